//! Choosing and opening the device a [`NetStack`](super::NetStack) runs on, from a spec string:
//! `tap:NAME[:plain]` (attach to tap interface NAME, creating it if it does not exist; `plain`
//! turns off the checksum and segmentation offloads) or `xdp:IFACE[:QUEUE]` (an AF_XDP socket
//! on IFACE's queue QUEUE, 0 by default).

use std::fmt;
use std::io;
use std::os::fd::RawFd;

use cairn_net::device::Device;

use crate::netdev::{Tap, TapConfig, XdpConfig, XdpDevice};

/// Which device to open, parsed from `tap:NAME[:plain]` or `xdp:IFACE[:QUEUE]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// A TAP interface, created if missing.
    Tap {
        /// The interface name.
        name: String,
        /// Exchange virtio-net headers so that the kernel finishes TCP checksums and cuts
        /// 64 KiB TCP segments ([`TapConfig::offloads`]). Off (`tap:NAME:plain`) every
        /// frame is whole and checksummed, which a user-space bridge or capture relaying the
        /// tap's frames needs, since it finishes nothing.
        offloads: bool,
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
    /// Parses `tap:NAME[:plain]` or `xdp:IFACE[:QUEUE]`.
    pub fn parse(text: &str) -> Result<DeviceSpec, String> {
        let bad = || format!("bad device {text:?}: expected tap:NAME[:plain] or xdp:IFACE[:QUEUE]");
        let (kind, rest) = text.split_once(':').ok_or_else(bad)?;
        let name_ok = |n: &str| !n.is_empty() && n.len() < libc::IFNAMSIZ && !n.contains('\0');
        match kind {
            "tap" => {
                let (name, offloads) = match rest.split_once(':') {
                    Some((name, "plain")) => (name, false),
                    Some(_) => return Err(bad()),
                    None => (rest, true),
                };
                if !name_ok(name) {
                    return Err(bad());
                }
                Ok(DeviceSpec::Tap { name: name.to_string(), offloads })
            }
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
            DeviceSpec::Tap { name, offloads } => {
                let config = TapConfig { offloads: *offloads, ..TapConfig::default() };
                let tap = Tap::open_with(name, true, config)?;
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
            DeviceSpec::Tap { name, offloads } => {
                let config = TapConfig { offloads: *offloads, ..TapConfig::default() };
                Tap::open_queues(name, true, queues, config)?
                    .into_iter()
                    .map(|tap| {
                        let fd = tap.raw_fd();
                        (Box::new(tap) as Box<dyn Device + Send>, fd)
                    })
                    .collect()
            }
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
            DeviceSpec::Tap { name, offloads: true } => write!(f, "tap:{name}"),
            DeviceSpec::Tap { name, offloads: false } => write!(f, "tap:{name}:plain"),
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
        let tap = DeviceSpec::parse("tap:tap0").unwrap();
        assert_eq!(tap, DeviceSpec::Tap { name: "tap0".into(), offloads: true });
        assert_eq!(tap.to_string(), "tap:tap0");
        let plain = DeviceSpec::parse("tap:tap0:plain").unwrap();
        assert_eq!(plain, DeviceSpec::Tap { name: "tap0".into(), offloads: false });
        assert_eq!(plain.to_string(), "tap:tap0:plain");
        assert_eq!(
            DeviceSpec::parse("xdp:veth1").unwrap(),
            DeviceSpec::Xdp { ifname: "veth1".into(), queue: 0 }
        );
        let spec = DeviceSpec::parse("xdp:eth0:3").unwrap();
        assert_eq!(spec, DeviceSpec::Xdp { ifname: "eth0".into(), queue: 3 });
        assert_eq!(spec.to_string(), "xdp:eth0:3");
        for bad in [
            "",
            "tap",
            "tap:",
            "tap::plain",
            "tap:a:fancy",
            "eth0",
            "xdp:eth0:x",
            "tun:a",
            "tap:sixteen_chars_xx",
        ] {
            assert!(DeviceSpec::parse(bad).is_err(), "{bad:?}");
        }
    }
}
