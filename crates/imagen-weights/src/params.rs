//! Counting a module's parameters without allocating them.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

struct Counter(usize);

impl<B: Backend> ModuleMapper<B> for Counter {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        self.0 += param.lazy_shape().num_elements();
        param
    }
}

/// The number of float parameters of `module`, read from the shapes of its
/// parameters without initialising the lazy ones (burn's `num_params` would
/// allocate them: 17 GB for IF-I-XL in f32). Returns the module unchanged.
pub fn count_params<B: Backend, M: Module<B>>(module: M) -> (usize, M) {
    let mut counter = Counter(0);
    let module = module.map(&mut counter);
    (counter.0, module)
}
