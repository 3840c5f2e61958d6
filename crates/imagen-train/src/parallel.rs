//! Data-parallel training on burn-collective: every peer (one device of one
//! node) holds the whole U-Net, computes gradients on its share of the global
//! batch, and an all-reduce averages them (inside a process at burn-collective's
//! local level, across processes and machines at its global level) before the
//! identical optimiser step every peer then takes.

use std::str::FromStr;

use burn::collective::{self, CollectiveConfig, PeerId, ReduceOperation};
use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor, TensorPrimitive};
use burn_communication::Address;

use crate::TrainError;

/// A trainer's place in a data-parallel run.
///
/// Ranks are global: on `nodes` machines with `devices` devices each, the
/// peer of device `d` on node `n` has rank `n * devices + d`. Peer `rank`
/// trains on micro-batches `rank * k .. (rank + 1) * k` of each step's
/// `world_size * k` (`k` = gradient accumulation), so a run on `P` devices
/// follows the same trajectory as one device accumulating `P * k`
/// micro-batches (up to float summation order).
///
/// ```
/// use imagen_train::DataParallel;
/// // Device 1 of 2 in this process.
/// let p = DataParallel::local(1, 2);
/// assert_eq!((p.rank, p.world_size), (1, 2));
/// // Device 0 of 2 on node 1 of 2: global rank 2 of 4.
/// let q = DataParallel::multi_node(1, 2, 0, 2, "ws://head:3000", "ws://node1:3001", 3001).unwrap();
/// assert_eq!((q.rank, q.world_size), (2, 4));
/// ```
#[derive(Debug, Clone)]
pub struct DataParallel {
    /// This peer's global rank, `0..world_size`.
    pub rank: usize,
    /// Peers over all nodes.
    pub world_size: usize,
    /// This peer's device index on its node (its burn-collective peer id).
    pub device_index: usize,
    /// burn-collective's settings: devices on this node, all-reduce
    /// strategies, and for several nodes the orchestrator's and this node's
    /// addresses.
    pub collective: CollectiveConfig,
}

impl DataParallel {
    /// Device `device` of `devices` in one process (burn-collective's local
    /// level only).
    pub fn local(device: usize, devices: usize) -> Self {
        Self {
            rank: device,
            world_size: devices,
            device_index: device,
            collective: CollectiveConfig::default().with_num_devices(devices),
        }
    }

    /// Device `device` of `devices` on node `node` of `nodes`. Every node
    /// reaches the global orchestrator (see [`serve_orchestrator`]) at
    /// `orchestrator` (`ws://host:port`) and serves its tensors to the
    /// other nodes at `node_address` (`ws://this-host:data_port`).
    pub fn multi_node(
        node: usize,
        nodes: usize,
        device: usize,
        devices: usize,
        orchestrator: &str,
        node_address: &str,
        data_port: u16,
    ) -> Result<Self, TrainError> {
        let address = |s: &str| {
            Address::from_str(s)
                .map_err(|e| TrainError::InvalidConfig(format!("address `{s}`: {e}")))
        };
        if node >= nodes || device >= devices {
            return Err(TrainError::InvalidConfig(format!(
                "node {node} of {nodes}, device {device} of {devices}: index out of range"
            )));
        }
        Ok(Self {
            rank: node * devices + device,
            world_size: nodes * devices,
            device_index: device,
            collective: CollectiveConfig::default()
                .with_num_devices(devices)
                .with_num_nodes(nodes as u32)
                .with_global_address(address(orchestrator)?)
                .with_node_address(address(node_address)?)
                .with_data_service_port(data_port),
        })
    }

    /// Checks the rank and the collective config.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.world_size == 0 || self.rank >= self.world_size || self.device_index > self.rank {
            return Err(TrainError::InvalidConfig(format!(
                "data-parallel rank {} is not below world size {}",
                self.rank, self.world_size
            )));
        }
        if !self.collective.is_valid() {
            return Err(TrainError::InvalidConfig(
                "burn-collective config sets only some of num_nodes, global_address, \
                 node_address and data_service_port"
                    .into(),
            ));
        }
        Ok(())
    }

    fn peer(&self) -> PeerId {
        PeerId::from(self.device_index as u32)
    }

    fn error(
        &self,
        operation: &'static str,
    ) -> impl FnOnce(collective::CollectiveError) -> TrainError {
        let peer = self.rank;
        move |e| TrainError::Collective {
            operation,
            peer,
            message: format!("{e:?}"),
        }
    }

    /// Registers this peer's device with the collective (once, before the
    /// first step).
    pub(crate) fn register<B: AutodiffBackend>(
        &self,
        device: &B::Device,
    ) -> Result<(), TrainError> {
        self.validate()?;
        collective::register::<B::InnerBackend>(
            self.peer(),
            device.clone(),
            self.collective.clone(),
        )
        .map_err(self.error("register"))
    }

    /// Leaves the collective (after the last step).
    pub(crate) fn finish<B: AutodiffBackend>(&self) -> Result<(), TrainError> {
        collective::finish_collective::<B::InnerBackend>(self.peer()).map_err(self.error("finish"))
    }

    /// Every peer's copy of `module` becomes rank 0's: one all-reduce (sum)
    /// of all its parameters, flattened, to which the other peers contribute
    /// zeros. This is a broadcast that also crosses nodes (burn-collective's
    /// global level has no `broadcast` yet) and is exact (`x + 0 = x`).
    pub(crate) fn broadcast<Bk: Backend, M: Module<Bk>>(&self, module: M) -> Result<M, TrainError> {
        let flat = self.broadcast_flat(flatten(&module))?;
        Ok(module.map(&mut Unflatten { flat, offset: 0 }))
    }

    /// [`DataParallel::broadcast`] for a module under autodiff (the values
    /// travel on the inner backend, where the peers are registered, and keep
    /// their `require_grad`).
    pub(crate) fn broadcast_trained<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        module: M,
    ) -> Result<M, TrainError> {
        let flat = self.broadcast_flat(flatten(&module.valid()))?;
        Ok(module.map(&mut UnflattenAutodiff::<B> {
            inner: Unflatten { flat, offset: 0 },
        }))
    }

    fn broadcast_flat<Bk: Backend>(
        &self,
        flat: Tensor<Bk, 1>,
    ) -> Result<Tensor<Bk, 1>, TrainError> {
        let sent = if self.rank == 0 {
            flat
        } else {
            flat.zeros_like()
        };
        self.all_reduce(sent, ReduceOperation::Sum, "broadcast")
    }

    /// Replaces every gradient of `module` by its mean over the peers and
    /// returns the mean of `loss`: one all-reduce of every gradient and the
    /// loss, flattened into one vector (a missing gradient takes part as
    /// zeros, so that every peer sends the same layout).
    ///
    /// Parameters are laid out in the module's structural order, which is
    /// the same on every peer; parameter ids are not, as each process draws
    /// its own (burn's `GradientsParams::all_reduce` orders by id, which only
    /// works for modules cloned inside one process).
    pub(crate) fn all_reduce_step<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        module: &M,
        grads: &mut GradientsParams,
        loss: f32,
        device: &burn::tensor::Device<B::InnerBackend>,
    ) -> Result<f32, TrainError> {
        let mut take = TakeGrads::<B> {
            grads,
            parts: Vec::new(),
            backend: std::marker::PhantomData,
        };
        module.visit(&mut take);
        let mut parts = take.parts;
        parts.push(Tensor::from_floats([loss], device));
        let n = parts.iter().map(|t| t.dims()[0]).sum::<usize>();
        let flat = self.all_reduce(Tensor::cat(parts, 0), ReduceOperation::Mean, "all-reduce")?;
        let loss = flat.clone().slice(n - 1..n).into_scalar().elem::<f32>();
        module.visit(&mut PutGrads::<B> {
            grads,
            flat: Unflatten { flat, offset: 0 },
        });
        Ok(loss)
    }

    fn all_reduce<Bk: Backend>(
        &self,
        flat: Tensor<Bk, 1>,
        op: ReduceOperation,
        operation: &'static str,
    ) -> Result<Tensor<Bk, 1>, TrainError> {
        let reduced = collective::all_reduce::<Bk>(self.peer(), flat.into_primitive().tensor(), op)
            .map_err(self.error(operation))?;
        Ok(Tensor::from_primitive(TensorPrimitive::Float(reduced)))
    }
}

/// Runs burn-collective's global orchestrator on `port` until the process
/// is interrupted: the rendezvous the nodes of a multi-node run register
/// with (start it once, on any machine they all reach).
pub fn serve_orchestrator(port: u16) -> Result<(), TrainError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| TrainError::Io {
            path: format!("orchestrator runtime (port {port})").into(),
            source,
        })?;
    runtime.block_on(collective::start_global_orchestrator(port));
    Ok(())
}

/// Every float parameter of `module`, in visiting order, in one vector.
fn flatten<Bk: Backend, M: Module<Bk>>(module: &M) -> Tensor<Bk, 1> {
    let mut f = Flatten { parts: Vec::new() };
    module.visit(&mut f);
    Tensor::cat(f.parts, 0)
}

struct Flatten<Bk: Backend> {
    parts: Vec<Tensor<Bk, 1>>,
}

impl<Bk: Backend> ModuleVisitor<Bk> for Flatten<Bk> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Bk, D>>) {
        let value = param.val();
        let n = value.shape().num_elements();
        self.parts.push(value.reshape([n]));
    }
}

/// Replaces each float parameter, in visiting order, by the next slice of
/// `flat` (the inverse of [`flatten`]).
struct Unflatten<Bk: Backend> {
    flat: Tensor<Bk, 1>,
    offset: usize,
}

impl<Bk: Backend> Unflatten<Bk> {
    fn next<const D: usize>(&mut self, shape: burn::tensor::Shape) -> Tensor<Bk, D> {
        let n = shape.num_elements();
        let out = self
            .flat
            .clone()
            .slice(self.offset..self.offset + n)
            .reshape(shape);
        self.offset += n;
        out
    }
}

impl<Bk: Backend> ModuleMapper<Bk> for Unflatten<Bk> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<Bk, D>>) -> Param<Tensor<Bk, D>> {
        param.map(|value| self.next(value.shape()))
    }
}

/// [`Unflatten`] of a module under autodiff, keeping `require_grad`.
struct UnflattenAutodiff<B: AutodiffBackend> {
    inner: Unflatten<B::InnerBackend>,
}

impl<B: AutodiffBackend> ModuleMapper<B> for UnflattenAutodiff<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        param.map(|value| {
            let require_grad = value.is_require_grad();
            Tensor::from_inner(self.inner.next(value.shape())).set_require_grad(require_grad)
        })
    }
}

/// Takes each parameter's gradient out of `grads`, flattened, in visiting
/// order (zeros where a parameter has none).
struct TakeGrads<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    parts: Vec<Tensor<B::InnerBackend, 1>>,
    backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for TakeGrads<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let grad = self
            .grads
            .remove::<B::InnerBackend, D>(param.id)
            .unwrap_or_else(|| param.val().inner().zeros_like());
        let n = grad.shape().num_elements();
        self.parts.push(grad.reshape([n]));
    }
}

/// Puts the reduced gradients back, in the order [`TakeGrads`] took them.
struct PutGrads<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    flat: Unflatten<B::InnerBackend>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for PutGrads<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let grad = self.flat.next::<D>(param.shape());
        self.grads.register::<B::InnerBackend, D>(param.id, grad);
    }
}
