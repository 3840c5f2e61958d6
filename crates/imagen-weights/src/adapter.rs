//! PyTorch → burn layout adapter with a fast transpose.

use std::rc::Rc;

use burn::tensor::TensorData;
use burn_store::{ModuleAdapter, PyTorchToBurnAdapter, TensorSnapshot};

/// burn-store's `PyTorchToBurnAdapter` (norm parameter names, `nn.Linear`
/// `[out, in]` → `[in, out]`), with the Linear transpose done by a blocked
/// copy of whole elements. burn-store's transpose copies byte slices one
/// element at a time and was 47 % of loading a T5-large checkpoint (8.6 s).
#[derive(Debug, Clone, Default)]
pub(crate) struct PyTorchLayout;

impl ModuleAdapter for PyTorchLayout {
    fn adapt(&self, snapshot: &TensorSnapshot) -> TensorSnapshot {
        let is_linear_weight = snapshot.shape.len() == 2
            && snapshot.module_type().as_deref() == Some("Struct:Linear")
            && snapshot
                .path_stack
                .as_ref()
                .and_then(|p| p.last())
                .is_some_and(|name| name == "weight");
        if !is_linear_weight {
            return PyTorchToBurnAdapter.adapt(snapshot);
        }
        let source = snapshot.clone_data_fn();
        let data_fn = Rc::new(move || source().map(transpose_2d));
        TensorSnapshot::from_closure(
            data_fn,
            snapshot.dtype,
            [snapshot.shape[1], snapshot.shape[0]].into(),
            snapshot.path_stack.clone().unwrap_or_default(),
            snapshot.container_stack.clone().unwrap_or_default(),
            snapshot.tensor_id.unwrap_or_default(),
        )
    }

    fn get_alternative_param_name(&self, param_name: &str, container_type: &str) -> Option<String> {
        PyTorchToBurnAdapter.get_alternative_param_name(param_name, container_type)
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

/// Transposes a 2-D tensor of any element size.
fn transpose_2d(data: TensorData) -> TensorData {
    let (rows, cols) = (data.shape[0], data.shape[1]);
    let dtype = data.dtype;
    let bytes = data.as_bytes();
    let out = match dtype.size() {
        2 => transpose_elems::<2>(bytes, rows, cols),
        4 => transpose_elems::<4>(bytes, rows, cols),
        8 => transpose_elems::<8>(bytes, rows, cols),
        n => transpose_elems_dyn(bytes, rows, cols, n),
    };
    TensorData::from_bytes_vec(out, [cols, rows], dtype)
}

/// Cache-blocked transpose of `rows x cols` elements of `N` bytes.
fn transpose_elems<const N: usize>(src: &[u8], rows: usize, cols: usize) -> Vec<u8> {
    const BLOCK: usize = 32;
    let mut dst = vec![0u8; src.len()];
    for r0 in (0..rows).step_by(BLOCK) {
        for c0 in (0..cols).step_by(BLOCK) {
            for r in r0..(r0 + BLOCK).min(rows) {
                for c in c0..(c0 + BLOCK).min(cols) {
                    let s = (r * cols + c) * N;
                    let d = (c * rows + r) * N;
                    let v: [u8; N] = src[s..s + N].try_into().expect("N bytes");
                    dst[d..d + N].copy_from_slice(&v);
                }
            }
        }
    }
    dst
}

fn transpose_elems_dyn(src: &[u8], rows: usize, cols: usize, n: usize) -> Vec<u8> {
    let mut dst = vec![0u8; src.len()];
    for r in 0..rows {
        for c in 0..cols {
            let (s, d) = ((r * cols + c) * n, (c * rows + r) * n);
            dst[d..d + n].copy_from_slice(&src[s..s + n]);
        }
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_every_element_size() {
        let v: Vec<f32> = (0..35).map(|i| i as f32).collect();
        let t = transpose_2d(TensorData::new(v, [5, 7]));
        assert_eq!(t.shape.to_vec(), vec![7, 5]);
        let t: Vec<f32> = t.to_vec().unwrap();
        for r in 0..5 {
            for c in 0..7 {
                assert_eq!(t[c * 5 + r], (r * 7 + c) as f32);
            }
        }
        let v: Vec<i16> = (0..70).collect();
        let t: Vec<i16> = transpose_2d(TensorData::new(v, [7, 10])).to_vec().unwrap();
        assert_eq!(t[..3], [0, 10, 20]);
        let v: Vec<f64> = (0..6).map(f64::from).collect();
        let t: Vec<f64> = transpose_2d(TensorData::new(v, [2, 3])).to_vec().unwrap();
        assert_eq!(t, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }
}
