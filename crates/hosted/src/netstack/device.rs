//! Choosing and opening the device a [`NetStack`](super::NetStack) runs on, from a spec string:
//! `tap:NAME` (attach to tap interface NAME, creating it if it does not exist) or
//! `xdp:IFACE[:QUEUE]` (an AF_XDP socket on IFACE's queue QUEUE, 0 by default).

use std::fmt;
use std::io;
use std::os::fd::RawFd;

use cairn_net::device::Device;

use crate::netdev::{Tap, TapConfig, XdpConfig, XdpDevice};

/// Which device to open, parsed from `tap:NAME` or `xdp:IFACE[:QUEUE]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// A TAP interface, created if missing.
    Tap {
        /// The interface name.
        name: String,
    },
    /// An AF_XDP socket on an interface's receive queue.
    Xdp {
        /// The interface name.
        ifname: String,
        /// The queue (0 on a veth, which has one).
        queue: u32,
    },
}

impl DeviceSpec {
    /// Parses `tap:NAME` or `xdp:IFACE[:QUEUE]`.
    pub fn parse(text: &str) -> Result<DeviceSpec, String> {
        let bad = || format!("bad device {text:?}: expected tap:NAME or xdp:IFACE[:QUEUE]");
        let (kind, rest) = text.split_once(':').ok_or_else(bad)?;
        let name_ok = |n: &str| !n.is_empty() && n.len() < libc::IFNAMSIZ && !n.contains('\0');
        match kind {
            "tap" if name_ok(rest) => Ok(DeviceSpec::Tap { name: rest.to_string() }),
            "xdp" => {
                let (ifname, queue) = match rest.split_once(':') {
                    Some((ifname, queue)) => (ifname, queue.parse().map_err(|_| bad())?),
                    None => (rest, 0),
                };
                if !name_ok(ifname) {
                    return Err(bad());
                }
                Ok(DeviceSpec::Xdp { ifname: ifname.to_string(), queue })
            }
            _ => Err(bad()),
        }
    }

    /// Opens the device in the calling thread's network namespace.
    pub fn open(&self) -> io::Result<OpenDevice> {
        match self {
            DeviceSpec::Tap { name } => {
                let tap = Tap::open(name, true)?;
                let fd = tap.raw_fd();
                Ok(OpenDevice { device: Box::new(tap), fd, spec: self.clone() })
            }
            DeviceSpec::Xdp { ifname, queue } => {
                let xdp = XdpDevice::open(ifname, *queue)?;
                let fd = xdp.raw_fd();
                Ok(OpenDevice { device: Box::new(xdp), fd, spec: self.clone() })
            }
        }
    }
}

impl DeviceSpec {
    /// Opens `queues` queues of the device, one for each stack of a
    /// [`ShardGroup`](super::ShardGroup): a multi-queue TAP (created multi-queue if missing),
    /// or AF_XDP sockets on the interface's queues `QUEUE .. QUEUE + queues`, all fed by one
    /// XDP program. One queue opens as [`DeviceSpec::open`] does.
    pub fn open_queues(&self, queues: usize) -> io::Result<Vec<OpenDevice>> {
        if queues <= 1 {
            return Ok(vec![self.open()?]);
        }
        let opened: Vec<(Box<dyn Device + Send>, RawFd)> = match self {
            DeviceSpec::Tap { name } => Tap::open_queues(name, true, queues, TapConfig::default())?
                .into_iter()
                .map(|tap| {
                    let fd = tap.raw_fd();
                    (Box::new(tap) as Box<dyn Device + Send>, fd)
                })
                .collect(),
            DeviceSpec::Xdp { ifname, queue } => {
                XdpDevice::open_queues(ifname, *queue, queues as u32, XdpConfig::default())?
                    .into_iter()
                    .map(|xdp| {
                        let fd = xdp.raw_fd();
                        (Box::new(xdp) as Box<dyn Device + Send>, fd)
                    })
                    .collect()
            }
        };
        Ok(opened
            .into_iter()
            .map(|(device, fd)| OpenDevice { device, fd, spec: self.clone() })
            .collect())
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Tap { name } => write!(f, "tap:{name}"),
            DeviceSpec::Xdp { ifname, queue } => write!(f, "xdp:{ifname}:{queue}"),
        }
    }
}

/// An opened device with the descriptor that becomes readable when a frame waits. It can move
/// to the core that will run the stack.
pub struct OpenDevice {
    /// The device.
    pub device: Box<dyn Device + Send>,
    /// Its descriptor, owned by `device` (valid while it lives).
    pub fd: RawFd,
    /// What was opened.
    pub spec: DeviceSpec,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print() {
        assert_eq!(DeviceSpec::parse("tap:tap0").unwrap(), DeviceSpec::Tap { name: "tap0".into() });
        assert_eq!(
            DeviceSpec::parse("xdp:veth1").unwrap(),
            DeviceSpec::Xdp { ifname: "veth1".into(), queue: 0 }
        );
        let spec = DeviceSpec::parse("xdp:eth0:3").unwrap();
        assert_eq!(spec, DeviceSpec::Xdp { ifname: "eth0".into(), queue: 3 });
        assert_eq!(spec.to_string(), "xdp:eth0:3");
        for bad in ["", "tap", "tap:", "eth0", "xdp:eth0:x", "tun:a", "tap:sixteen_chars_xx"] {
            assert!(DeviceSpec::parse(bad).is_err(), "{bad:?}");
        }
    }
}
