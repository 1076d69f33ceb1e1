//! The 16 display modes: four base views times "no links" and three link modifiers.
//!
//! Mode ids and names are user-visible contracts: bookmarked URLs carry the id in the
//! trace ID, and Jaeger's service list shows the names.

use std::fmt;

/// How spans of the found objects are arranged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Base {
    /// Events stay child spans of their object; link-class spans visible.
    Tree,
    /// All events under the root object.
    Timeline,
    /// One span per object, events as logs (the default).
    Tracing,
    /// Like tracing, with one child span per event source.
    Grouped,
}

/// Which linked objects are followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Modifier {
    /// Ancestors and descendants, up to 3 levels each way, no siblings.
    FullTree,
    /// Ancestors only, up to 3 levels.
    Ancestors,
    /// Descendants only, up to 3 levels.
    OwnedObjects,
}

/// A display mode: base view plus optional link modifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DisplayMode {
    /// The base view.
    pub base: Base,
    /// The link modifier, if any.
    pub modifier: Option<Modifier>,
}

const BASES: [(Base, u32, &str); 4] = [
    (Base::Tree, 0x0000_0000, "tree"),
    (Base::Timeline, 0x1000_0000, "timeline"),
    (Base::Tracing, 0x2000_0000, "tracing"),
    (Base::Grouped, 0x3000_0000, "grouped"),
];

const MODIFIERS: [(Modifier, u32, &str); 3] = [
    (Modifier::FullTree, 0x0100_0000, "full tree"),
    (Modifier::Ancestors, 0x0200_0000, "ancestors"),
    (Modifier::OwnedObjects, 0x0400_0000, "owned objects"),
];

/// The mode shown first and used by `/redirect`: `tracing`.
pub const DEFAULT_MODE: DisplayMode = DisplayMode {
    base: Base::Tracing,
    modifier: None,
};

impl DisplayMode {
    /// The 32-bit id carried in trace IDs (`21000000` = tracing [full tree]).
    pub fn id(&self) -> u32 {
        let base = BASES.iter().find(|b| b.0 == self.base).map_or(0, |b| b.1);
        let bit = self
            .modifier
            .and_then(|m| MODIFIERS.iter().find(|x| x.0 == m))
            .map_or(0, |x| x.1);
        base | bit
    }

    /// The mode with the given id, if it is one of the 16.
    pub fn from_id(id: u32) -> Option<Self> {
        let base = BASES.iter().find(|b| b.1 == id & 0xf000_0000)?.0;
        let modifier = match id & 0x0fff_ffff {
            0 => None,
            bits => Some(MODIFIERS.iter().find(|m| m.1 == bits)?.0),
        };
        Some(Self { base, modifier })
    }

    /// The mode with the given name; a leading `* ` (the UI's marker) is ignored.
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.strip_prefix("* ").unwrap_or(name);
        all().into_iter().find(|m| m.to_string() == name)
    }
}

impl fmt::Display for DisplayMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = BASES.iter().find(|b| b.0 == self.base).map_or("", |b| b.2);
        match self
            .modifier
            .and_then(|m| MODIFIERS.iter().find(|x| x.0 == m))
        {
            Some((_, _, name)) => write!(f, "{base} [{name}]"),
            None => f.write_str(base),
        }
    }
}

/// Every mode: the default first, then the others in id order.
pub fn all() -> Vec<DisplayMode> {
    let mut modes = vec![DEFAULT_MODE];
    for (base, _, _) in BASES {
        for modifier in std::iter::once(None).chain(MODIFIERS.iter().map(|m| Some(m.0))) {
            let m = DisplayMode { base, modifier };
            if m != DEFAULT_MODE {
                modes.push(m);
            }
        }
    }
    modes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_modes_with_spec_ids_and_names() {
        let modes = all();
        assert_eq!(modes.len(), 16);
        assert_eq!(modes[0].to_string(), "tracing");
        let by_id = |id| DisplayMode::from_id(id).unwrap().to_string();
        assert_eq!(by_id(0x2100_0000), "tracing [full tree]");
        assert_eq!(by_id(0x2200_0000), "tracing [ancestors]");
        assert_eq!(by_id(0x2400_0000), "tracing [owned objects]");
        assert_eq!(by_id(0x0100_0000), "tree [full tree]");
        assert_eq!(by_id(0x3200_0000), "grouped [ancestors]");
        assert_eq!(by_id(0x1000_0000), "timeline");
        assert!(
            DisplayMode::from_id(0x2300_0000).is_none(),
            "modifiers are exclusive"
        );
        assert!(DisplayMode::from_id(0x4000_0000).is_none());
        for m in modes {
            assert_eq!(DisplayMode::from_id(m.id()), Some(m));
            assert_eq!(DisplayMode::from_name(&m.to_string()), Some(m));
        }
        assert_eq!(DisplayMode::from_name("* tracing"), Some(DEFAULT_MODE));
    }
}
