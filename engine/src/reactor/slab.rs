//! A slab: a vector of slots reused through a free list (connections by slot number).

/// A vector with a free list; indices are stable while occupied.
pub(super) struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<usize>,
    len: usize,
}

impl<T> Slab<T> {
    pub(super) fn new() -> Self {
        Self {
            items: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
    pub(super) fn insert(&mut self, v: T) -> usize {
        self.len += 1;
        if let Some(i) = self.free.pop() {
            self.items[i] = Some(v);
            i
        } else {
            self.items.push(Some(v));
            self.items.len() - 1
        }
    }
    pub(super) fn get(&self, i: usize) -> Option<&T> {
        self.items.get(i).and_then(|x| x.as_ref())
    }
    pub(super) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.items.get_mut(i).and_then(|x| x.as_mut())
    }
    pub(super) fn remove(&mut self, i: usize) -> Option<T> {
        let v = self.items.get_mut(i).and_then(|x| x.take());
        if v.is_some() {
            self.len -= 1;
            self.free.push(i);
        }
        v
    }
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Two distinct occupied entries at once.
    pub(super) fn two_mut(&mut self, a: usize, b: usize) -> (Option<&mut T>, Option<&mut T>) {
        if a == b || a >= self.items.len() || b >= self.items.len() {
            return (None, None);
        }
        if a < b {
            let (x, y) = self.items.split_at_mut(b);
            (x[a].as_mut(), y[0].as_mut())
        } else {
            let (x, y) = self.items.split_at_mut(a);
            (y[0].as_mut(), x[b].as_mut())
        }
    }
    pub(super) fn slots(&self) -> Vec<usize> {
        (0..self.items.len())
            .filter(|i| self.items[*i].is_some())
            .collect()
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
        assert!(matches!(s.two_mut(a, a), (Some(_), None) | (None, None)));
        assert_eq!(s.get_mut(99), None);
    }
}
