//! The reactor's slot tables (connections, in-flight operations) on the `slab` crate: stable
//! indices while occupied, vacant indices reused, and lookups of a vacated slot answered with
//! `None` instead of a panic (a completion may name a slot its connection already left).

/// A slab whose accessors never panic on a vacant or out-of-range index.
pub(super) struct Slab<T>(slab::Slab<T>);

impl<T> Slab<T> {
    pub(super) fn new() -> Self {
        Slab(slab::Slab::new())
    }
    pub(super) fn insert(&mut self, v: T) -> usize {
        self.0.insert(v)
    }
    pub(super) fn get(&self, i: usize) -> Option<&T> {
        self.0.get(i)
    }
    pub(super) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.0.get_mut(i)
    }
    pub(super) fn remove(&mut self, i: usize) -> Option<T> {
        self.0.try_remove(i)
    }
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Two distinct occupied entries at once.
    pub(super) fn two_mut(&mut self, a: usize, b: usize) -> (Option<&mut T>, Option<&mut T>) {
        // get2_mut asserts distinct keys and indexes past the end on a key out of range
        if a == b || !self.0.contains(a) || !self.0.contains(b) {
            return (None, None);
        }
        match self.0.get2_mut(a, b) {
            Some((x, y)) => (Some(x), Some(y)),
            None => (None, None),
        }
    }
    /// The occupied indices.
    pub(super) fn slots(&self) -> Vec<usize> {
        self.0.iter().map(|(i, _)| i).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Slab;

    #[test]
    fn slots_are_reused_and_stable() {
        let mut s = Slab::new();
        assert!(s.is_empty());
        let a = s.insert("a");
        let b = s.insert("b");
        assert_ne!(a, b);
        assert_eq!(s.get(a), Some(&"a"));
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.get(a), None);
        assert_eq!(s.remove(a), None, "a slot is freed once");
        // the freed slot is the next one used; b keeps its index
        assert_eq!(s.insert("c"), a);
        assert_eq!(s.get(b), Some(&"b"));
        let mut both = s.slots();
        both.sort_unstable();
        let mut want = vec![a, b];
        want.sort_unstable();
        assert_eq!(both, want);
        if let (Some(x), Some(y)) = s.two_mut(a, b) {
            std::mem::swap(x, y);
        }
        assert_eq!(s.get(a), Some(&"b"));
        assert_eq!(s.get(b), Some(&"c"));
        assert!(matches!(s.two_mut(a, a), (None, None)));
        assert!(matches!(s.two_mut(a, 99), (None, None)));
        assert_eq!(s.get_mut(99), None);
        assert_eq!(s.remove(99), None);
    }
}
