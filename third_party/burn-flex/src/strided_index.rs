use crate::layout::Layout;
use alloc::vec;
use alloc::vec::Vec;

/// Iterator that yields linear indices for strided tensor access.
///
/// Handles non-contiguous tensors (including those with negative strides from flip)
/// by computing the correct storage index for each logical element position.
pub struct StridedIter<'a> {
    /// Current storage index (signed to handle negative strides)
    storage_index: isize,
    multi_index: Vec<usize>,
    layout: &'a Layout,
    remaining: usize,
}

impl<'a> StridedIter<'a> {
    /// Create a new strided iterator for the given layout.
    pub fn new(layout: &'a Layout) -> Self {
        let ndims = layout.num_dims();
        Self {
            storage_index: layout.start_offset() as isize,
            multi_index: vec![0; ndims],
            layout,
            remaining: layout.num_elements(),
        }
    }
}

impl Iterator for StridedIter<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.remaining == 0 {
            return None;
        }

        debug_assert!(
            self.storage_index >= 0,
            "StridedIter: negative storage index"
        );
        let idx = self.storage_index as usize;
        self.remaining -= 1;

        // Advance multi-index (last dimension first, like odometer)
        let shape = self.layout.shape();
        let strides = self.layout.strides();

        for d in (0..shape.num_dims()).rev() {
            self.multi_index[d] += 1;
            if self.multi_index[d] < shape[d] {
                self.storage_index += strides[d];
                break;
            }
            // Wrap around this dimension
            self.multi_index[d] = 0;
            self.storage_index -= (shape[d] as isize - 1) * strides[d];
        }

        Some(idx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for StridedIter<'_> {}

/// Visits a strided view of `shape` row by row instead of element by element.
///
/// `views` holds each operand's `(strides, start_offset)` over the same
/// logical shape. Size-1 dimensions are dropped and adjacent dimensions that
/// form one affine run in *every* operand are merged, then `f(starts, len,
/// inner_strides)` is called once per innermost run, in row-major order:
/// element `i` of the run lives at `starts[k] + i * inner_strides[k]` in
/// operand `k`. The odometer over the outer dimensions costs once per run,
/// so callers can write tight (vectorisable) inner loops for the common
/// stride-1 and stride-0 cases. Negative strides are allowed.
///
/// (imagen's patch: replaces per-element `StridedIter` walks on the hot
/// paths of `to_contiguous`, `binary_op` and `scalar_op`.)
pub(crate) fn for_each_run<const K: usize, F>(
    shape: &[usize],
    views: [(&[isize], isize); K],
    mut f: F,
) where
    F: FnMut([isize; K], usize, [isize; K]),
{
    if shape.contains(&0) {
        return;
    }
    let mut dims: Vec<(usize, [isize; K])> = Vec::with_capacity(shape.len());
    for (d, &n) in shape.iter().enumerate() {
        if n == 1 {
            continue;
        }
        let strides: [isize; K] = core::array::from_fn(|k| views[k].0[d]);
        if let Some((outer_n, outer_s)) = dims.last_mut()
            && (0..K).all(|k| outer_s[k] == strides[k] * n as isize)
        {
            *outer_n *= n;
            *outer_s = strides;
            continue;
        }
        dims.push((n, strides));
    }
    let mut starts: [isize; K] = core::array::from_fn(|k| views[k].1);
    let Some((inner_n, inner_s)) = dims.pop() else {
        f(starts, 1, [0; K]);
        return;
    };
    let mut index = vec![0usize; dims.len()];
    loop {
        f(starts, inner_n, inner_s);
        let mut d = dims.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            let (n, s) = dims[d];
            index[d] += 1;
            if index[d] < n {
                for k in 0..K {
                    starts[k] += s[k];
                }
                break;
            }
            index[d] = 0;
            for k in 0..K {
                starts[k] -= s[k] * (n as isize - 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn_std::Shape;

    #[test]
    fn test_contiguous_iteration() {
        let layout = Layout::contiguous(Shape::from(vec![2, 3]));
        let indices: Vec<_> = StridedIter::new(&layout).collect();
        assert_eq!(indices, vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn test_transposed_iteration() {
        // Original: [[0, 1, 2], [3, 4, 5]] (shape [2, 3], strides [3, 1])
        // Transposed: [[0, 3], [1, 4], [2, 5]] (shape [3, 2], strides [1, 3])
        let layout = Layout::contiguous(Shape::from(vec![2, 3])).transpose(0, 1);
        let indices: Vec<_> = StridedIter::new(&layout).collect();
        assert_eq!(indices, vec![0, 3, 1, 4, 2, 5]);
    }

    #[test]
    fn test_narrowed_iteration() {
        // Original: [[0, 1, 2, 3], [4, 5, 6, 7]] (shape [2, 4])
        // Narrowed dim=1, start=1, len=2: [[1, 2], [5, 6]]
        let layout = Layout::contiguous(Shape::from(vec![2, 4])).narrow(1, 1, 2);
        let indices: Vec<_> = StridedIter::new(&layout).collect();
        assert_eq!(indices, vec![1, 2, 5, 6]);
    }

    #[test]
    fn test_for_each_run_matches_strided_iter() {
        let layouts = [
            Layout::contiguous(Shape::from(vec![2, 3, 4, 5])).transpose(0, 1),
            Layout::contiguous(Shape::from(vec![2, 3, 4, 5])).permute(&[0, 2, 3, 1]),
            Layout::contiguous(Shape::from(vec![2, 1, 4, 5])).narrow(2, 1, 2),
            Layout::contiguous(Shape::from(vec![6, 4])).flip(&[0]),
            Layout::contiguous(Shape::from(vec![3, 1, 4])),
        ];
        for layout in &layouts {
            let expected: Vec<usize> = StridedIter::new(layout).collect();
            let mut got = Vec::new();
            for_each_run(
                layout.shape(),
                [(layout.strides(), layout.start_offset() as isize)],
                |[start], len, [stride]| {
                    got.extend((0..len).map(|i| (start + i as isize * stride) as usize))
                },
            );
            assert_eq!(got, expected, "{layout:?}");
        }
    }
}
