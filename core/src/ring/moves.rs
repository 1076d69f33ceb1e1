//! How a shard's group moves toward its target, one membership change at a time:
//! the pure choice of the next change, which the shard's leader then makes.

use super::members::NodeId;
use std::collections::BTreeSet;

/// The next membership change `shard` needs, if any.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Add this node (as a learner, then a voter).
    Add(NodeId),
    /// Remove this voter.
    Remove(NodeId),
    /// Drop learners the target does not name.
    DropLearners(BTreeSet<NodeId>),
}

/// The next step from `voters`/`learners` toward `target`: additions first, so the
/// group never has fewer replicas than it had while it moves.
pub fn next_step(
    target: &[NodeId],
    voters: &BTreeSet<NodeId>,
    learners: &BTreeSet<NodeId>,
) -> Option<Step> {
    if target.is_empty() {
        return None;
    }
    if let Some(add) = target.iter().find(|n| !voters.contains(n)) {
        return Some(Step::Add(*add));
    }
    if let Some(rm) = voters.iter().find(|n| !target.contains(n)) {
        return Some(Step::Remove(*rm));
    }
    let stray: BTreeSet<NodeId> = learners
        .iter()
        .filter(|n| !target.contains(n))
        .copied()
        .collect();
    (!stray.is_empty()).then_some(Step::DropLearners(stray))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[NodeId]) -> BTreeSet<NodeId> {
        v.iter().copied().collect()
    }

    #[test]
    fn adds_before_removing_and_drops_stray_learners_last() {
        let none = BTreeSet::new();
        assert_eq!(
            next_step(&[1, 2, 4], &set(&[1, 2, 3]), &none),
            Some(Step::Add(4))
        );
        assert_eq!(
            next_step(&[1, 2, 4], &set(&[1, 2, 3, 4]), &none),
            Some(Step::Remove(3))
        );
        assert_eq!(
            next_step(&[1, 2, 4], &set(&[1, 2, 4]), &set(&[5])),
            Some(Step::DropLearners(set(&[5])))
        );
        assert_eq!(next_step(&[1, 2, 4], &set(&[1, 2, 4]), &none), None);
        assert_eq!(next_step(&[], &set(&[1]), &none), None);
    }
}
