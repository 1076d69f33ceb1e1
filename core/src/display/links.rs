//! Which links a display mode follows (SPEC 6.8), as a state carried along each path.
//!
//! The first traversal of a path fixes its direction, so siblings and cousins are never
//! reached ("deny siblings"); each direction has its own distance budget.

use super::mode::Modifier;
use crate::model::LINK_CLASS_CHILDREN;

/// Direction of one traversal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From a child to its owner.
    Up,
    /// From an owner to its child.
    Down,
}

/// What may still be followed from an object reached along some path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selector {
    up_left: u32,
    down_left: u32,
    only_children_class: bool,
    direction: Option<Direction>,
}

/// Levels followed in each allowed direction.
const DISTANCE: u32 = 3;

impl Selector {
    /// The selector a mode starts from; `None` means links are never followed.
    pub fn for_modifier(modifier: Option<Modifier>) -> Option<Self> {
        let (up, down, only_children) = match modifier? {
            Modifier::FullTree => (DISTANCE, DISTANCE, false),
            Modifier::Ancestors => (DISTANCE, 0, true),
            Modifier::OwnedObjects => (0, DISTANCE, true),
        };
        Some(Self {
            up_left: up,
            down_left: down,
            only_children_class: only_children,
            direction: None,
        })
    }

    /// Whether a traversal is admitted, and the selector for the object it reaches.
    pub fn admit(&self, going: Direction, class: &str) -> Option<Self> {
        if self.only_children_class && class != LINK_CLASS_CHILDREN {
            return None;
        }
        if self.direction.is_some_and(|d| d != going) {
            return None;
        }
        let mut next = *self;
        next.direction = Some(going);
        let left = match going {
            Direction::Up => &mut next.up_left,
            Direction::Down => &mut next.down_left,
        };
        *left = left.checked_sub(1)?;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_tree_goes_both_ways_but_never_to_siblings() {
        let s = Selector::for_modifier(Some(Modifier::FullTree)).unwrap();
        let up = s.admit(Direction::Up, "children").unwrap();
        assert!(
            up.admit(Direction::Down, "children").is_none(),
            "sibling via parent"
        );
        let up3 = up
            .admit(Direction::Up, "")
            .unwrap()
            .admit(Direction::Up, "")
            .unwrap();
        assert!(up3.admit(Direction::Up, "").is_none(), "three levels");
        assert!(s.admit(Direction::Down, "").is_some());
    }

    #[test]
    fn ancestors_and_owned_objects_are_one_directional() {
        let a = Selector::for_modifier(Some(Modifier::Ancestors)).unwrap();
        assert!(a.admit(Direction::Down, "children").is_none());
        assert!(a.admit(Direction::Up, "").is_none(), "children class only");
        assert!(a.admit(Direction::Up, "children").is_some());
        let o = Selector::for_modifier(Some(Modifier::OwnedObjects)).unwrap();
        assert!(o.admit(Direction::Up, "children").is_none());
        assert!(o.admit(Direction::Down, "children").is_some());
        assert!(Selector::for_modifier(None).is_none());
    }
}
