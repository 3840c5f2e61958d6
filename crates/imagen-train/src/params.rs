//! Whole-model parameter operations burn leaves to the user: the EMA blend,
//! global-norm gradient clipping, parameter paths for optimiser state, and
//! drawing lazily initialised weights now.

use std::collections::HashMap;

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Bool, Int, Tensor, TensorPrimitive};

/// Every float parameter's current value, by id.
struct Collect<B: Backend> {
    values: HashMap<ParamId, TensorPrimitive<B>>,
}

impl<B: Backend> ModuleVisitor<B> for Collect<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.values.insert(param.id, param.val().into_primitive());
    }
}

/// Touches every parameter, which initialises the lazy ones.
struct Materialize;

impl<B: Backend> ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<B, D, Int>>) {
        let _ = param.val();
    }
    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<B, D, Bool>>) {
        let _ = param.val();
    }
}

/// Draws every lazily initialised parameter of `module` now.
///
/// burn's `Config::init` defers each random draw to the parameter's first
/// use, so seeding the backend right before `init` alone does not fix the
/// weights: another thread's draws (the backend's generator is one per
/// process) can land in between. Call this while the seed still holds.
///
/// ```
/// use burn::tensor::backend::Backend;
/// use burn_flex::Flex;
/// use imagen_train::materialize;
/// use imagen_unet::UNetConfig;
///
/// let device = Default::default();
/// Flex::seed(&device, 7);
/// let unet = materialize(UNetConfig::tiny_base(16).init::<Flex>(&device).unwrap());
/// # let _ = unet;
/// ```
pub fn materialize<B: Backend, M: Module<B>>(module: M) -> M {
    module.visit(&mut Materialize);
    module
}

/// `ema = decay * ema + (1 - decay) * current`, matched by parameter id.
struct Blend<B: Backend> {
    current: HashMap<ParamId, TensorPrimitive<B>>,
    decay: f64,
}

impl<B: Backend> ModuleMapper<B> for Blend<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, ema, mapper) = param.consume();
        let value = match self.current.remove(&id) {
            Some(cur) => {
                ema * self.decay + Tensor::<B, D>::from_primitive(cur) * (1.0 - self.decay)
            }
            None => ema,
        };
        Param::from_mapped_value(id, value, mapper)
    }
}

/// Moves `ema` towards `model` (the same network: clones share parameter
/// ids) with weight `1 - decay`.
pub fn ema_update<B: AutodiffBackend, M: AutodiffModule<B>>(
    ema: M::InnerModule,
    model: &M,
    decay: f64,
) -> M::InnerModule {
    let mut collect = Collect::<B::InnerBackend> {
        values: HashMap::new(),
    };
    model.valid().visit(&mut collect);
    ema.map(&mut Blend {
        current: collect.values,
        decay,
    })
}

/// Global L2 norm of the gradients of `module`'s parameters.
struct Norm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    sum_sq: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Norm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let s = g.powi_scalar(2).sum();
            self.sum_sq = Some(match self.sum_sq.take() {
                Some(acc) => acc + s,
                None => s,
            });
        }
    }
}

/// Multiplies every gradient of `module` by `scale`.
struct Scale<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    scale: f64,
    backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads.register(param.id, g * self.scale);
        }
    }
}

/// Clips the gradients to a global L2 norm of `max_norm` (one norm over all
/// parameters, as `torch.nn.utils.clip_grad_norm_`; burn's own clipping is
/// per parameter). Returns the norm before clipping.
///
/// A NaN or infinite norm leaves the gradients as they are (scaling by
/// `max_norm / inf = 0` would turn an infinite gradient into NaN and zero
/// the rest): the caller must check the returned norm and not apply them,
/// as [`Trainer::train_step`](crate::Trainer::train_step) does.
pub fn clip_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
    let mut norm = Norm::<B> {
        grads,
        sum_sq: None,
    };
    module.visit(&mut norm);
    let total = norm
        .sum_sq
        .map(|s| f64::from(s.sqrt().into_scalar().elem::<f32>()))
        .unwrap_or(0.0);
    if total.is_finite() && total > max_norm {
        module.visit(&mut Scale::<B> {
            grads,
            scale: max_norm / (total + 1e-6),
            backend: std::marker::PhantomData,
        });
    }
    total
}

use burn::tensor::ElementConversion;

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Autodiff;
    use burn::nn::{Linear, LinearConfig};
    use burn_flex::Flex;

    type B = Autodiff<Flex>;

    #[test]
    fn ema_moves_by_one_minus_decay() {
        let device = Default::default();
        let model: Linear<B> = LinearConfig::new(2, 2).init(&device);
        let ema = model.valid().map(&mut ZeroMapper);
        let ema = ema_update::<B, Linear<B>>(ema, &model, 0.75);
        let want = model.valid().weight.val() * 0.25;
        let got = ema.weight.val();
        assert!((got - want).abs().max().into_scalar() < 1e-7);
    }

    struct ZeroMapper;
    impl<B: Backend> ModuleMapper<B> for ZeroMapper {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            p.map(|t| t.zeros_like())
        }
    }

    #[test]
    fn clipping_scales_to_the_global_norm() {
        let device = Default::default();
        let model: Linear<B> = LinearConfig::new(3, 4).init(&device);
        let x = Tensor::<B, 2>::ones([5, 3], &device) * 10.0;
        let loss = model.forward(x).sum();
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        let before = clip_grad_norm(&model, &mut grads, 0.5);
        assert!(before > 0.5);
        let after = clip_grad_norm(&model, &mut grads, 1e9);
        assert!((after - 0.5).abs() < 1e-3, "{after}");
    }

    /// Issue 39: an infinite norm used to scale every gradient by 0 (a NaN
    /// one skipped clipping); a non-finite norm now leaves them as they are
    /// for the caller to refuse.
    #[test]
    fn a_non_finite_norm_leaves_the_gradients_alone() {
        let device = Default::default();
        let model: Linear<B> = LinearConfig::new(3, 4).init(&device);
        let loss = model.forward(Tensor::<B, 2>::ones([5, 3], &device)).sum();
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        let bias_id = model.bias.as_ref().unwrap().id;
        let bias = grads.get::<Flex, 1>(bias_id).unwrap();
        let w = grads.remove::<Flex, 2>(model.weight.id).unwrap();
        grads.register::<Flex, 2>(model.weight.id, w.slice_fill([0..1, 0..1], f32::INFINITY));
        let norm = clip_grad_norm(&model, &mut grads, 0.5);
        assert_eq!(norm, f64::INFINITY);
        let after = grads.get::<Flex, 1>(bias_id).unwrap();
        assert!(
            after.equal(bias).all().into_scalar(),
            "bias gradient changed"
        );
    }
}
