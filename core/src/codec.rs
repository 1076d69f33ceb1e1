//! postcard encoding into a buffer sized before it is written: records, log entries
//! and peer messages carry whole objects' JSON, and growing the buffer as postcard
//! wrote it reallocated and copied each of them a dozen times.

use serde::Serialize;

/// `value` in postcard's encoding, in a buffer of exactly its size.
pub fn to_sized_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    let size = postcard::experimental::serialized_size(value)?;
    postcard::to_extend(value, Vec::with_capacity(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bytes_are_postcards_and_the_buffer_is_not_grown() {
        let value = (7u64, "an object's JSON".repeat(100), vec![1u32, 2, 3]);
        let sized = to_sized_vec(&value).unwrap();
        assert_eq!(sized, postcard::to_stdvec(&value).unwrap());
        assert_eq!(sized.capacity(), sized.len());
    }
}
