//! Data-parallel training on burn-collective: every peer (one device of one
//! node) holds the whole U-Net, computes gradients on its share of the global
//! batch, and an all-reduce averages them (inside a process at burn-collective's
//! local level, across processes and machines at its global level) before the
//! identical optimiser step every peer then takes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor, TensorPrimitive};
use burn_collective::{self as collective, CollectiveConfig, PeerId, ReduceOperation};
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
/// Across nodes, burn-collective's endpoints (the orchestrator and each
/// node's tensor data service) are unauthenticated WebSocket servers that
/// accept tensors from whoever connects: they listen on the interface the
/// addresses name, never on every interface by default, and must only be
/// reachable by the peers (`docs/training.md`, "Trust model").
///
/// ```
/// use imagen_train::DataParallel;
/// // Device 1 of 2 in this process.
/// let p = DataParallel::local(1, 2);
/// assert_eq!((p.rank, p.world_size), (1, 2));
/// // Device 0 of 2 on node 1 of 2: global rank 2 of 4. Its data service
/// // will listen on 10.0.0.2 only.
/// let q = DataParallel::multi_node(1, 2, 0, 2, "ws://10.0.0.1:3000", "ws://10.0.0.2:3001", 3001)
///     .unwrap();
/// assert_eq!((q.rank, q.world_size), (2, 4));
/// assert_eq!(q.data_bind_host(), Some("10.0.0.2".parse().unwrap()));
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
    /// reaches the global orchestrator (see [`serve_orchestrator_on`]) at
    /// `orchestrator` (`ws://host:port`) and serves its tensors to the
    /// other nodes at `node_address` (`ws://this-host:data_port`).
    ///
    /// The data service listens on `data_port` of the interface
    /// `node_address` names, not on every interface: an IP address as
    /// given, `localhost` as 127.0.0.1, another name resolved here to its
    /// first non-loopback address. A name that resolves only to loopback
    /// here (as `$(hostname)` does on some distributions, 127.0.1.1) is an
    /// error, since the other nodes could not reach it; give the IP, or
    /// pick the interface with [`DataParallel::with_data_bind_host`].
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
                .with_data_service_port(data_port)
                .with_data_service_host(bind_host(node_address)?),
        })
    }

    /// Serves this node's tensors on `host` instead of the interface
    /// [`DataParallel::multi_node`] derived from the node address (e.g. the
    /// private interface behind a NAT; `0.0.0.0` for every interface, which
    /// exposes the unauthenticated service to whoever reaches the machine).
    pub fn with_data_bind_host(mut self, host: IpAddr) -> Self {
        self.collective = self.collective.with_data_service_host(host);
        self
    }

    /// The interface this node's tensor data service listens on (`None`
    /// for a single-node run, which serves nothing).
    pub fn data_bind_host(&self) -> Option<IpAddr> {
        self.collective.data_service_host()
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
        // burn-collective only logs a data service that fails to bind, and
        // the run then waits for it forever: refuse an address that is not
        // this machine's. (In use is fine: another device of this node may
        // already serve on it.)
        if let (Some(host), Some(port)) = (
            self.collective.data_service_host(),
            self.collective.data_service_port(),
        ) && let Err(e) = std::net::TcpListener::bind((host, port))
            && e.kind() == std::io::ErrorKind::AddrNotAvailable
        {
            return Err(TrainError::InvalidConfig(format!(
                "data service address {host}:{port} is not an address of this machine: {e}"
            )));
        }
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

/// Runs burn-collective's global orchestrator on `port` of **every
/// interface** (`0.0.0.0`) until the process is interrupted. Prefer
/// [`serve_orchestrator_on`] with the address the nodes dial: the
/// orchestrator is unauthenticated (`docs/training.md`, "Trust model").
pub fn serve_orchestrator(port: u16) -> Result<(), TrainError> {
    serve_orchestrator_on(SocketAddr::from(([0, 0, 0, 0], port)))
}

/// Runs burn-collective's global orchestrator on `address` only (e.g.
/// `127.0.0.1:3000` for nodes on this machine, or a private interface)
/// until the process is interrupted: the rendezvous the nodes of a
/// multi-node run register with (start it once, on a machine they all
/// reach). An address that cannot be bound is an error naming it.
pub fn serve_orchestrator_on(address: SocketAddr) -> Result<(), TrainError> {
    let io = |source| TrainError::Io {
        path: format!("orchestrator address {address}").into(),
        source,
    };
    // burn-collective only logs a failed bind; try it here first.
    drop(std::net::TcpListener::bind(address).map_err(io)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io)?;
    runtime.block_on(collective::start_global_orchestrator_on(address));
    Ok(())
}

/// The interface to serve a node's tensors on, from its address
/// `ws://host:port` (see [`DataParallel::multi_node`]).
fn bind_host(node_address: &str) -> Result<IpAddr, TrainError> {
    let bad =
        |why: String| TrainError::InvalidConfig(format!("node address `{node_address}`: {why}"));
    let authority = node_address
        .split_once("://")
        .map_or(node_address, |(_, rest)| rest);
    let authority = authority.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(Ipv4Addr::LOCALHOST.into());
    }
    if host.is_empty() {
        return Err(bad("no host".into()));
    }
    let found: Vec<IpAddr> = (host, 0)
        .to_socket_addrs()
        .map_err(|e| bad(format!("cannot resolve `{host}`: {e}")))?
        .map(|a| a.ip())
        .collect();
    found
        .iter()
        .find(|ip| !ip.is_loopback())
        .copied()
        .ok_or_else(|| {
            bad(format!(
                "`{host}` resolves only to loopback here ({found:?}), which the other nodes cannot \
             reach; give this node's IP address, or choose the interface with \
             DataParallel::with_data_bind_host"
            ))
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 39: the data service binds the host of the node address, not
    /// every interface.
    #[test]
    fn the_data_service_binds_the_node_address_host() {
        let host = |a: &str| bind_host(a).map(|ip| ip.to_string());
        assert_eq!(host("ws://127.0.0.1:3001").unwrap(), "127.0.0.1");
        assert_eq!(host("ws://10.1.2.3:3001/path").unwrap(), "10.1.2.3");
        assert_eq!(host("ws://[::1]:3001").unwrap(), "::1");
        assert_eq!(host("ws://LocalHost:3001").unwrap(), "127.0.0.1");
        assert_eq!(host("10.0.0.7:3001").unwrap(), "10.0.0.7");
        let msg = host("ws://:3001").unwrap_err().to_string();
        assert!(msg.contains("ws://:3001"), "{msg}");
        let msg = host("ws://no-such-host.invalid:3001")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("no-such-host.invalid"), "{msg}");

        let p = DataParallel::multi_node(0, 2, 0, 1, "ws://127.0.0.1:1", "ws://127.0.0.1:2", 2)
            .unwrap();
        assert_eq!(p.data_bind_host(), Some(Ipv4Addr::LOCALHOST.into()));
        let p = p.with_data_bind_host(Ipv4Addr::UNSPECIFIED.into());
        assert_eq!(p.data_bind_host(), Some(Ipv4Addr::UNSPECIFIED.into()));
        assert_eq!(DataParallel::local(0, 1).data_bind_host(), None);
    }
}
