//! The optimizer's per-parameter state, kept the way the last step left it.
//!
//! [`Optimizer::step`](super::Optimizer::step) updates parameters whose states agree together, on
//! their concatenation. Their new state stays concatenated here, so the next step with the same
//! group uses it as it is. Splitting and re-concatenating both Adam moments of every parameter on
//! each step cost ~180 of the ~1370 kernel launches of a small DynUNet train step on a GPU backend
//! (CubeCL profile on wgpu). A group is split only when a step groups its parameters differently:
//! a parameter without a gradient, a state of another size, a state loaded from a checkpoint.

use std::collections::HashMap;

use burn::tensor::backend::Backend;

use super::optimizer::ParamState;

/// The states of parameters updated together: one [`ParamState`] over their concatenation.
struct StoredGroup<B: Backend> {
    /// The parameters' keys, in concatenation order.
    keys: Vec<String>,
    /// Their element counts, in the same order.
    sizes: Vec<usize>,
    state: ParamState<B>,
}

/// Optimizer state by parameter key, stored by the group it was last updated in.
pub(crate) struct StateStore<B: Backend> {
    groups: HashMap<u64, StoredGroup<B>>,
    /// Parameter key -> the group holding its state.
    owner: HashMap<String, u64>,
    next_id: u64,
}

impl<B: Backend> Default for StateStore<B> {
    fn default() -> Self {
        Self { groups: HashMap::new(), owner: HashMap::new(), next_id: 0 }
    }
}

impl<B: Backend> StateStore<B> {
    /// How many parameters have a state.
    pub(crate) fn len(&self) -> usize {
        self.owner.len()
    }

    pub(crate) fn clear(&mut self) {
        self.groups.clear();
        self.owner.clear();
    }

    /// The state of the group holding `key`'s state (its step count and buffers are `key`'s), and
    /// how many elements of it are `key`'s.
    pub(crate) fn get(&self, key: &str) -> Option<(&ParamState<B>, usize)> {
        let group = self.groups.get(self.owner.get(key)?)?;
        let at = group.keys.iter().position(|k| k == key)?;
        Some((&group.state, group.sizes[at]))
    }

    /// Stores the state of the parameters `keys` (of `sizes` elements), concatenated in that
    /// order, replacing whatever state they had.
    pub(crate) fn insert(&mut self, keys: Vec<String>, sizes: Vec<usize>, state: ParamState<B>) {
        self.discard(&keys);
        let id = self.next_id;
        self.next_id += 1;
        for key in &keys {
            self.owner.insert(key.clone(), id);
        }
        self.groups.insert(id, StoredGroup { keys, sizes, state });
    }

    /// Removes the states of `keys` (the other members of their groups keep theirs).
    pub(crate) fn discard(&mut self, keys: &[String]) {
        for key in keys {
            self.take(key);
        }
    }

    /// Removes and returns the state of the parameters `keys`, concatenated in that order: the
    /// stored group as it is when it holds exactly them, else their states split out and joined.
    /// `None` if one of them has none.
    pub(crate) fn take_group(&mut self, keys: &[String]) -> Option<ParamState<B>> {
        let id = *self.owner.get(keys.first()?)?;
        if self.groups.get(&id).is_some_and(|g| g.keys == keys) {
            let group = self.groups.remove(&id)?;
            for key in &group.keys {
                self.owner.remove(key);
            }
            return Some(group.state);
        }
        let states: Vec<Option<ParamState<B>>> = keys.iter().map(|k| self.take(k)).collect();
        ParamState::cat(states)
    }

    /// Removes and returns `key`'s own state; the rest of its group is kept, one state each.
    fn take(&mut self, key: &str) -> Option<ParamState<B>> {
        let id = self.owner.remove(key)?;
        let group = self.groups.remove(&id)?;
        if group.keys.len() == 1 {
            return Some(group.state);
        }
        let mut own = None;
        for ((k, size), state) in group.keys.into_iter().zip(group.sizes.iter().copied()).zip(group.state.split(&group.sizes)) {
            if k == key {
                own = Some(state);
            } else {
                self.insert(vec![k], vec![size], state);
            }
        }
        own
    }

    /// Every stored group: its keys, their sizes, and the concatenated state.
    pub(crate) fn groups(&self) -> impl Iterator<Item = (&[String], &[usize], &ParamState<B>)> {
        self.groups.values().map(|g| (g.keys.as_slice(), g.sizes.as_slice(), &g.state))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Tensor, TensorData};

    use super::*;
    use crate::backend::Cpu;

    fn state(values: &[f32]) -> ParamState<Cpu> {
        let t = |v: Vec<f32>| Tensor::from_data(TensorData::new(v.clone(), [v.len()]), &Default::default());
        ParamState::Adam { step: 3, exp_avg: t(values.to_vec()), exp_avg_sq: t(values.iter().map(|v| v * 10.0).collect()), max_exp_avg_sq: None }
    }

    fn moments(s: &ParamState<Cpu>) -> (Vec<f32>, Vec<f32>) {
        match s {
            ParamState::Adam { exp_avg, exp_avg_sq, .. } => (exp_avg.to_data().to_vec().expect("f32"), exp_avg_sq.to_data().to_vec().expect("f32")),
            ParamState::Sgd { .. } => panic!("an Adam state was stored"),
        }
    }

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    /// The same group comes back as it went in; a different grouping gets each member's own
    /// values, and members left out keep theirs.
    #[test]
    fn groups_are_reused_whole_or_split_per_member() {
        let mut store = StateStore::<Cpu>::default();
        store.insert(keys(&["a", "b", "c"]), vec![2, 1, 3], state(&[1., 2., 3., 4., 5., 6.]));
        assert_eq!(store.len(), 3);
        assert_eq!(store.get("b").map(|(_, n)| n), Some(1));
        assert_eq!(store.get("c").map(|(_, n)| n), Some(3));

        let whole = store.take_group(&keys(&["a", "b", "c"])).expect("stored");
        assert_eq!(moments(&whole).0, [1., 2., 3., 4., 5., 6.]);
        assert_eq!(store.len(), 0);

        store.insert(keys(&["a", "b", "c"]), vec![2, 1, 3], whole);
        let reordered = store.take_group(&keys(&["c", "a"])).expect("stored");
        assert_eq!(moments(&reordered), (vec![4., 5., 6., 1., 2.], vec![40., 50., 60., 10., 20.]));
        assert_eq!(store.len(), 1, "b keeps its state");
        assert_eq!(store.get("b").map(|(s, n)| (moments(s).0, n)), Some((vec![3.], 1)));
        assert!(store.take_group(&keys(&["b", "z"])).is_none(), "z has no state");
    }

    /// Inserting a state for a parameter replaces its old one, also inside a larger group.
    #[test]
    fn insert_replaces_a_member_of_a_group() {
        let mut store = StateStore::<Cpu>::default();
        store.insert(keys(&["a", "b"]), vec![1, 1], state(&[1., 2.]));
        store.insert(keys(&["b"]), vec![1], state(&[9.]));
        assert_eq!(store.len(), 2);
        assert_eq!(store.get("a").map(|(s, _)| moments(s).0), Some(vec![1.]));
        assert_eq!(store.get("b").map(|(s, _)| moments(s).0), Some(vec![9.]));
        store.discard(&keys(&["a"]));
        assert!(store.get("a").is_none());
        assert_eq!(store.groups().count(), 1);
    }
}
