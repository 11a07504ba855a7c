//! `trainer.devices`, `trainer.num_nodes`, `strategy: ddp`: how a `train` command becomes
//! peers — one thread per device in this process, one process per node — and how the nodes
//! find each other (torchrun's variables: `MASTER_ADDR`, `MASTER_PORT`, `NODE_RANK`,
//! `WORLD_SIZE`; SLURM's `SLURM_NODEID`), through burn-collective's global orchestrator, which
//! node 0 runs unless `--external-orchestrator` says one runs apart
//! (`<experiment> orchestrator --port P`).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use burn::collective::CollectiveConfig;
use burn::tensor::backend::Backend;
use burn::tensor::backend::{Device as _, DeviceId};
use cytodl_schema::{Strategy, Trainer};
use thiserror::Error;

use super::RunArgs;
use crate::train::parallel::{Abort, ParallelError, Peer, Topology};

/// torchrun's default rendezvous port.
pub const DEFAULT_MASTER_PORT: u16 = 29500;

/// A data-parallel setting that cannot run.
#[derive(Debug, Error, PartialEq)]
pub enum LaunchError {
    #[error("trainer.devices: {0}")]
    Devices(String),
    #[error("trainer.strategy single_device trains on one device, but trainer.devices selects {0}: set trainer.devices=1 or strategy=ddp")]
    SingleDevice(usize),
    #[error("trainer.num_nodes must be at least 1, found {0}")]
    Nodes(i64),
    #[error("node rank {rank} is not below trainer.num_nodes={nodes} (set NODE_RANK or --node-rank to 0..{last})", last = nodes - 1)]
    NodeRank { rank: usize, nodes: usize },
    #[error("a run of {nodes} nodes needs this node's rank: set NODE_RANK (or --node-rank)")]
    NoNodeRank { nodes: usize },
    #[error("WORLD_SIZE={world_size} does not match trainer.num_nodes={nodes} x {devices} device(s) per node")]
    WorldSize { world_size: usize, nodes: usize, devices: usize },
    #[error("{var}={value}: expected {expected}")]
    Env { var: &'static str, value: String, expected: &'static str },
    #[error("cannot listen on port {port} for {what}: {message} (choose another with {flag})")]
    Port { port: u16, what: &'static str, message: String, flag: &'static str },
    #[error("cannot start the orchestrator: {0}")]
    Orchestrator(String),
}

/// Where this process's peers train, and how they reach the others.
#[derive(Debug, Clone)]
pub struct Launch<D> {
    pub topology: Topology,
    /// This node's devices, one peer each, by local rank.
    pub devices: Vec<D>,
    pub config: CollectiveConfig,
    pub timeout: Duration,
    /// The port this process runs the orchestrator on (node 0, unless one runs apart).
    pub orchestrator: Option<u16>,
}

fn env_number(var: &'static str) -> Result<Option<usize>, LaunchError> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map(Some).map_err(|_| LaunchError::Env { var, value: v, expected: "a whole number" }),
        _ => Ok(None),
    }
}

/// This machine's name, as other nodes reach it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "127.0.0.1".into())
}

fn is_loopback(addr: &str) -> bool {
    addr == "localhost" || addr.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Fails early, with the flag to change, when `port` is taken.
fn check_port(port: u16, what: &'static str, flag: &'static str) -> Result<(), LaunchError> {
    TcpListener::bind(("0.0.0.0", port)).map(drop).map_err(|e| LaunchError::Port { port, what, message: e.to_string(), flag })
}

/// How a `train` command trains: on one device, or as data-parallel peers.
#[derive(Debug, Clone)]
pub enum Plan<D> {
    /// One device: the `--device`, or the GPU a one-index `trainer.devices` list names.
    One(D),
    Peers(Launch<D>),
}

/// The data-parallel launch a `train` command asks for, or the one device it trains on.
/// `device` is the chosen device (its index is the first of `trainer.devices`' count); `gpu`
/// whether it is one (CPU peers share the one CPU device, as Lightning's `ddp_sim` on CPU
/// processes do).
pub fn plan<B: Backend>(trainer: &Trainer, args: &RunArgs, device: &B::Device, gpu: bool) -> Result<Plan<B::Device>, LaunchError> {
    let nodes = usize::try_from(trainer.num_nodes).ok().filter(|n| *n >= 1).ok_or(LaunchError::Nodes(trainer.num_nodes))?;
    let first = device.to_id();
    let available = if gpu { B::device_count(first.type_id).max(1) } else { usize::MAX };
    let indices = match (&trainer.devices, gpu) {
        (cytodl_schema::Devices::Count(n), _) => (first.index_id as usize..first.index_id as usize + n).collect::<Vec<_>>(),
        (cytodl_schema::Devices::All, false) => vec![first.index_id as usize],
        (devices, _) => devices.select(available).map_err(LaunchError::Devices)?,
    };
    if let Some(i) = indices.iter().find(|i| gpu && **i >= available) {
        return Err(LaunchError::Devices(format!("device {i} does not exist: the backend has {available} (0..{})", available - 1)));
    }
    let local_devices = indices.len();
    if trainer.strategy == Strategy::SingleDevice && local_devices > 1 {
        return Err(LaunchError::SingleDevice(local_devices));
    }
    let world_size = env_number("WORLD_SIZE")?;
    let nodes = match world_size {
        // torchrun with one process per node: WORLD_SIZE counts nodes when num_nodes is unset.
        Some(w) if nodes == 1 && w > 1 && w % local_devices == 0 => w / local_devices,
        Some(w) if w > 1 && w != nodes * local_devices => return Err(LaunchError::WorldSize { world_size: w, nodes, devices: local_devices }),
        _ => nodes,
    };
    let mut devices: Vec<B::Device> =
        indices.iter().map(|i| if gpu { B::Device::from_id(DeviceId { type_id: first.type_id, index_id: *i as u16 }) } else { device.clone() }).collect();
    if nodes * local_devices == 1 {
        return Ok(Plan::One(devices.pop().unwrap_or_else(|| device.clone())));
    }
    let mut config = CollectiveConfig::default().with_num_devices(local_devices);
    let mut node_rank = 0;
    let mut orchestrator = None;
    if nodes > 1 {
        node_rank = match args.node_rank {
            Some(r) => r,
            None => env_number("NODE_RANK")?.or(env_number("SLURM_NODEID")?).ok_or(LaunchError::NoNodeRank { nodes })?,
        };
        if node_rank >= nodes {
            return Err(LaunchError::NodeRank { rank: node_rank, nodes });
        }
        let master_addr = args.master_addr.clone().or_else(|| std::env::var("MASTER_ADDR").ok()).unwrap_or_else(|| "127.0.0.1".into());
        let master_port = match args.master_port {
            Some(p) => p,
            None => match env_number("MASTER_PORT")? {
                Some(p) => u16::try_from(p).map_err(|_| LaunchError::Env { var: "MASTER_PORT", value: p.to_string(), expected: "a port (1..65535)" })?,
                None => DEFAULT_MASTER_PORT,
            },
        };
        let node_addr = args.node_addr.clone().unwrap_or_else(|| if is_loopback(&master_addr) { "127.0.0.1".into() } else { hostname() });
        let data_port = args.data_port.unwrap_or_else(|| master_port.wrapping_add(1 + node_rank as u16));
        check_port(data_port, "this node's tensor data service", "--data-port")?;
        if node_rank == 0 && !args.external_orchestrator {
            check_port(master_port, "the orchestrator", "MASTER_PORT or --master-port")?;
            orchestrator = Some(master_port);
        }
        let address = |host: &str, port: u16| format!("ws://{host}:{port}").parse().map_err(LaunchError::Orchestrator);
        config = config
            .with_num_nodes(nodes as u32)
            .with_global_address(address(&master_addr, master_port)?)
            .with_node_address(address(&node_addr, data_port)?)
            .with_data_service_port(data_port);
    }
    Ok(Plan::Peers(Launch {
        topology: Topology { nodes, node_rank, local_devices },
        devices,
        config,
        timeout: Duration::from_secs(args.peer_timeout.max(1)),
        orchestrator,
    }))
}

/// Installs the process's log subscriber before burn-communication can install its own (which
/// prints every connection at INFO): warnings of the collective only, or what `RUST_LOG` asks.
pub fn quiet_collective_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("off,burn_collective=warn,burn_communication=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Runs burn-collective's global orchestrator on `port` in the background (node 0 of a
/// multi-node run, or the `orchestrator` command in the foreground).
pub fn start_orchestrator(port: u16) -> Result<std::thread::JoinHandle<()>, LaunchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| LaunchError::Orchestrator(e.to_string()))?;
    std::thread::Builder::new()
        .name("orchestrator".into())
        .spawn(move || runtime.block_on(burn::collective::start_global_orchestrator(port)))
        .map_err(|e| LaunchError::Orchestrator(e.to_string()))
}

/// Runs `peer_main` once per device of `launch`, each on its own thread with its [`Peer`]
/// joined, and returns the first peer's result — or, when a peer failed, the failure that
/// started it (the others stop with [`ParallelError::PeerFailed`] at their next collective call).
pub fn run_peers<B, T, F>(launch: Launch<B::Device>, peer_main: F) -> Result<T, crate::cli::CliError>
where
    B: Backend,
    T: Send,
    F: Fn(Peer<B>, B::Device) -> Result<T, crate::cli::CliError> + Sync,
{
    let abort = Arc::new(Abort::default());
    let autocast = crate::nn::autocast::compute_dtype();
    let results: Vec<Result<T, crate::cli::CliError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = launch
            .devices
            .iter()
            .enumerate()
            .map(|(local, device)| {
                let (abort, config, peer_main, device) = (abort.clone(), launch.config.clone(), &peer_main, device.clone());
                let (rank, world, timeout) = (launch.topology.rank(local), launch.topology.world(), launch.timeout);
                std::thread::Builder::new().name(format!("peer-{rank}")).spawn_scoped(scope, move || {
                    let _autocast = crate::nn::autocast::enable(autocast);
                    let peer = Peer::<B>::join(rank, world, device.clone(), config, timeout, abort.clone()).map_err(crate::train::error::TrainError::from)?;
                    let result = peer_main(peer.clone(), device);
                    match &result {
                        Ok(_) => peer.leave().map_err(crate::train::error::TrainError::from)?,
                        Err(e) => peer.fail(e.to_string()),
                    }
                    result
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or_else(|_| Err(crate::cli::CliError::PeerPanicked)),
                Err(e) => Err(crate::cli::CliError::Io { path: "peer thread".into(), source: e }),
            })
            .collect()
    });
    let is_consequence = |e: &crate::cli::CliError| matches!(e, crate::cli::CliError::Train(t) if matches!(**t, crate::train::error::TrainError::Parallel(ParallelError::PeerFailed { .. })));
    let mut first_ok = None;
    let mut cause = None;
    let mut consequence = None;
    for r in results {
        match r {
            Ok(v) => {
                first_ok.get_or_insert(v);
            }
            Err(e) if is_consequence(&e) => {
                consequence.get_or_insert(e);
            }
            Err(e) => {
                cause.get_or_insert(e);
            }
        }
    }
    match (cause.or(consequence), first_ok) {
        (Some(e), _) => Err(e),
        (None, Some(v)) => Ok(v),
        (None, None) => Err(crate::cli::CliError::PeerPanicked),
    }
}
