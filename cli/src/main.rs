//! `cairn`: the appliances, tools and benchmarks of the cairn library OS.
//!
//! Every subcommand has `--help`. The binary chooses the platform (today: hosted on Linux) and
//! wires it under the portable core; apps never name a platform (DESIGN.md, "Layers").

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod cache;
mod echo;
mod net;
mod ninep;

/// Every allocation of the binary is served by cairn's own general-purpose allocator (per-core
/// slab caches over a buddy page allocator, fed by mmap), as an EbbRT application uses its
/// library OS's allocator.
#[global_allocator]
static ALLOCATOR: cairn_hosted::pages::HostedAllocator =
    cairn_hosted::pages::HostedAllocator::new();

/// cairn: a framework for specialized library operating systems and network appliances.
#[derive(Parser)]
#[command(name = "cairn", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The memcached-compatible cache appliance (the main job).
    Cache(cache::CacheArgs),
    /// A TCP echo server on the hosted runtime, one loop per core.
    Echo(echo::EchoArgs),
    /// 9P: a client (ls, cat, put, stat, rm, mkdir) and the file server (serve).
    #[command(name = "9p")]
    Ninep(ninep::NinepArgs),
    /// Tools on cairn's own TCP/IP stack (TAP or AF_XDP): echo, ping, sink, send.
    Net {
        #[command(subcommand)]
        cmd: net::NetCommand,
    },
    /// Runs a benchmark against its peer and prints a table and a JSON line.
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Which benchmark.
    #[arg(value_enum)]
    name: BenchName,
    /// A much shorter run, for a smoke test.
    #[arg(long)]
    quick: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BenchName {
    /// Calling through an EbbRef against a plain reference.
    Ebb,
    /// Hoard's threadtest: cairn's allocator against glibc malloc and mimalloc.
    Alloc,
    /// A cross-core spawn_on round trip against std::sync::mpsc ping-pong.
    Spawn,
    /// cairn cache against memcached, one core each, driven by memcaslap (ETC-like workload).
    Cache,
    /// NetPIPE-style TCP ping-pong: cairn's stack on AF_XDP against Linux, over a veth pair.
    Netpipe,
    /// One TCP stream's goodput both ways: cairn's stack against Linux, over a veth pair.
    Iperf,
    /// PROSE's 9P experiment: write latency per transport, and a file read against diod.
    #[value(name = "9p")]
    Ninep,
}

impl BenchName {
    fn as_str(self) -> &'static str {
        match self {
            BenchName::Ebb => "ebb",
            BenchName::Alloc => "alloc",
            BenchName::Spawn => "spawn",
            BenchName::Cache => "cache",
            BenchName::Netpipe => "netpipe",
            BenchName::Iperf => "iperf",
            BenchName::Ninep => "9p",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Cache(args) => cache::run(&args),
        Command::Echo(args) => echo::run(&args),
        Command::Ninep(args) => ninep::run(args),
        Command::Net { cmd } => net::run(cmd),
        Command::Bench(args) => {
            let report = match args.name {
                BenchName::Ebb => bench::ebb::run(args.quick),
                BenchName::Alloc => bench::alloc::run(args.quick),
                BenchName::Spawn => bench::spawn::run(args.quick),
                BenchName::Cache => bench::cache::run(args.quick),
                BenchName::Netpipe => bench::netpipe::run(args.quick),
                BenchName::Iperf => bench::iperf::run(args.quick),
                BenchName::Ninep => bench::ninep::run(args.quick),
            };
            report.map(|r| bench::print(args.name.as_str(), &r))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cairn: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_subcommand_has_help_and_the_definition_is_consistent() {
        let mut cmd = super::Cli::command();
        cmd.build();
        cmd.clone().debug_assert();
        for sub in cmd.get_subcommands() {
            assert!(sub.get_about().is_some(), "{} has no help text", sub.get_name());
        }
        for name in ["cache", "echo", "bench", "9p", "net"] {
            let err = super::Cli::command()
                .try_get_matches_from(["cairn", name, "--help"])
                .expect_err("--help exits early");
            assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp, "{name} --help");
        }
    }
}
