//! The underlay: one namespace acting as the data-center router. Every simulated NIC's
//! uplink is a TAP on its host bridge (192.0.2.0/24 in the VPC file's numbering), every
//! gateway namespace hangs off its gateway bridge (203.0.113.0/24), and the router forwards
//! between the two. VXLAN crosses it for real, so tcpdump and tshark can watch it.
use super::netns::{self, ip, ip_in, tc_in, IpError};
use super::tap::Tap;
use host_driver::tables::MacDisplay;
use hw_sim::vfio_user::uplink::UplinkClient;
use hw_sim::{UplinkPort, Wire};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The start of every underlay namespace's name, followed by the deployment's tag
/// (`vpcnic_ul_<pid>_<n>`): deployments running side by side each have their own router.
/// `_` cannot appear in an instance or gateway name, so it never collides with one.
pub const NAMESPACE_PREFIX: &str = "vpcnic_ul_";
/// The bridge the NIC uplinks are ports of.
pub const HOST_BRIDGE: &str = "br-hosts";
/// The bridge the gateways' underlay interfaces are ports of.
pub const GATEWAY_BRIDGE: &str = "br-gw";
/// MTU of the underlay: room for a 9001-byte packet in VXLAN, as in a VPC data center.
pub const MTU: u32 = 9216;

/// Addresses of the underlay router.
#[derive(Clone, Copy, Debug)]
pub struct RouterAddrs {
    /// The router on the host network, and its prefix length.
    pub hosts: (Ipv4Addr, u8),
    /// The MAC every NIC uplink sends to.
    pub hosts_mac: [u8; 6],
    /// The router on the gateway network.
    pub gateways: (Ipv4Addr, u8),
}

/// The far end of a NIC's uplink cable: an in-process board's port, or a `nic-sim`
/// process's uplink socket.
pub trait Cable: Send + Sync + 'static {
    /// Puts a frame on the wire towards the NIC.
    fn send(&self, frame: &[u8]);
    /// The next frame the NIC sent, waiting up to `timeout`.
    fn recv(&self, timeout: Duration) -> Option<Vec<u8>>;
    /// [`Cable::recv`] into `buf` (of `hw_sim::MAX_WIRE_FRAME` bytes): the frame's length.
    fn recv_into(&self, buf: &mut [u8], timeout: Duration) -> Option<usize> {
        let frame = self.recv(timeout)?;
        let dst = buf.get_mut(..frame.len())?;
        dst.copy_from_slice(&frame);
        Some(frame.len())
    }
    /// Lets the NIC drive `wire` itself, with no thread between ([`hw_sim::Wire`]); false
    /// when this cable cannot (a `nic-sim` process: the uplink bridge moves its frames).
    fn plug(&self, _wire: Arc<dyn Wire>) -> bool {
        false
    }
    /// Undoes [`Cable::plug`].
    fn unplug(&self) {}
}

impl Cable for UplinkPort {
    fn send(&self, frame: &[u8]) {
        UplinkPort::send(self, frame)
    }
    fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        UplinkPort::recv(self, timeout)
    }
    fn recv_into(&self, buf: &mut [u8], timeout: Duration) -> Option<usize> {
        UplinkPort::recv_into(self, buf, timeout)
    }
    fn plug(&self, wire: Arc<dyn Wire>) -> bool {
        UplinkPort::plug(self, wire);
        true
    }
    fn unplug(&self) {
        UplinkPort::unplug(self)
    }
}

impl Cable for UplinkClient {
    fn send(&self, frame: &[u8]) {
        UplinkClient::send(self, frame)
    }
    fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        UplinkClient::recv(self, timeout)
    }
}

/// The running underlay. Dropping it stops the uplink bridges and deletes the namespace.
pub struct Underlay {
    name: String,
    addrs: RouterAddrs,
    uplinks: Vec<UplinkBridge>,
    veths: u32,
}

fn sysctl(ns: &str, settings: &[&str]) -> Result<(), IpError> {
    let mut args = vec!["netns", "exec", ns, "sysctl", "-qw"];
    args.extend_from_slice(settings);
    ip(&args).map(drop)
}

impl Underlay {
    /// Creates the router namespace `name` with its two bridges, replacing a stale one.
    pub fn create(name: &str, addrs: RouterAddrs) -> Result<Underlay, IpError> {
        netns::delete(name);
        netns::add(name)?;
        let u = Underlay {
            name: name.to_string(),
            addrs,
            uplinks: Vec::new(),
            veths: 0,
        };
        // A router that never sends redirects: hosts on one segment talk through it.
        let ns = u.name.as_str();
        sysctl(
            ns,
            &[
                "net.ipv4.ip_forward=1",
                "net.ipv4.conf.all.send_redirects=0",
                "net.ipv4.conf.default.send_redirects=0",
            ],
        )?;
        // A wire has no firewall: where br_netfilter is loaded, its per-namespace switches
        // would run iptables over every bridged frame (a tenth of the CPU of TCP between
        // hosts). Without the module the keys do not exist and there is nothing to turn off.
        let _ = sysctl(
            ns,
            &[
                "net.bridge.bridge-nf-call-iptables=0",
                "net.bridge.bridge-nf-call-ip6tables=0",
                "net.bridge.bridge-nf-call-arptables=0",
            ],
        );
        let mtu = MTU.to_string();
        let hosts = format!("{}/{}", addrs.hosts.0, addrs.hosts.1);
        let gws = format!("{}/{}", addrs.gateways.0, addrs.gateways.1);
        let mac = MacDisplay(&addrs.hosts_mac).to_string();
        for (br, cidr, mac) in [
            (HOST_BRIDGE, &hosts, Some(&mac)),
            (GATEWAY_BRIDGE, &gws, None),
        ] {
            ip_in(ns, &["link", "add", br, "type", "bridge"])?;
            if let Some(mac) = mac {
                ip_in(ns, &["link", "set", br, "address", mac])?;
            }
            ip_in(ns, &["link", "set", br, "mtu", &mtu, "up"])?;
            ip_in(ns, &["addr", "add", cidr, "dev", br])?;
        }
        Ok(u)
    }

    /// The router's addresses.
    pub fn addrs(&self) -> &RouterAddrs {
        &self.addrs
    }

    /// The router's namespace.
    pub fn namespace(&self) -> &str {
        &self.name
    }

    /// Plugs a NIC's uplink into the host bridge as TAP `port` (at most 15 bytes) of the
    /// router's namespace. The TAP is made under a name unique on the machine, then moved
    /// and renamed.
    pub fn attach_nic(&mut self, port: &str, uplink: Arc<dyn Cable>) -> Result<(), IpError> {
        let temp = super::tap::unique_name("vu");
        let tap = Tap::create(&temp).map_err(|e| IpError {
            command: format!("ip tuntap add {temp}"),
            reason: e.to_string(),
        })?;
        let ns = self.name.as_str();
        ip(&["link", "set", &temp, "netns", ns])?;
        ip_in(ns, &["link", "set", &temp, "name", port])?;
        let mtu = MTU.to_string();
        ip_in(
            ns,
            &[
                "link",
                "set",
                port,
                "master",
                HOST_BRIDGE,
                "mtu",
                &mtu,
                "up",
            ],
        )?;
        // The TAP's own ring is the port's buffer: a full ring drops, as a switch port
        // does, so a qdisc in front of it never holds a frame and only costs its lock and
        // queueing on every frame the router forwards to this NIC.
        tc_in(ns, &["qdisc", "replace", "dev", port, "root", "noqueue"])?;
        self.uplinks
            .push(UplinkBridge::spawn(tap, uplink).map_err(|e| IpError {
                command: format!("uplink bridge for {port}"),
                reason: e.to_string(),
            })?);
        Ok(())
    }

    /// Connects namespace `ns` to the gateway bridge with a veth whose end in `ns` is `ul0`
    /// with address `addr` (and whose end on the bridge is `gw<n>`), and routes `ns`'s
    /// traffic through the router. Both ends are made in their namespaces directly.
    pub fn attach_gateway(&mut self, ns: &str, addr: (Ipv4Addr, u8)) -> Result<(), IpError> {
        let outer = format!("gw{}", self.veths);
        self.veths += 1;
        let router = self.name.as_str();
        ip(&[
            "link", "add", &outer, "netns", router, "type", "veth", "peer", "name", "ul0", "netns",
            ns,
        ])?;
        // Jumbo like the rest of the underlay: a 1500-byte packet in VXLAN is 1550 bytes.
        let mtu = MTU.to_string();
        ip_in(
            router,
            &[
                "link",
                "set",
                &outer,
                "master",
                GATEWAY_BRIDGE,
                "mtu",
                &mtu,
                "up",
            ],
        )?;
        ip_in(ns, &["link", "set", "ul0", "mtu", &mtu, "up"])?;
        let cidr = format!("{}/{}", addr.0, addr.1);
        ip_in(ns, &["addr", "add", &cidr, "dev", "ul0"])?;
        let via = self.addrs.gateways.0.to_string();
        ip_in(ns, &["route", "add", "default", "via", &via, "dev", "ul0"])?;
        Ok(())
    }
}

impl Drop for Underlay {
    fn drop(&mut self) {
        self.uplinks.clear();
        netns::delete(&self.name);
    }
}

/// Connects a NIC's uplink port and its TAP on the host bridge: an in-process NIC drives
/// the TAP itself (plugged as its wire: no thread and no copy between, one wake-up less a
/// frame); a `nic-sim` process's uplink socket gets a thread each way.
struct UplinkBridge {
    cable: Arc<dyn Cable>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// A TAP as a NIC's wire.
struct TapWire(Tap);

impl Wire for TapWire {
    fn transmit(&self, frame: &[u8]) -> bool {
        self.0.write_frame(frame).is_ok()
    }

    fn receive(&self, buf: &mut [u8]) -> Option<usize> {
        // One byte past `buf` tells a frame that did not fit, which is dropped.
        let mut over = [0u8; 1];
        loop {
            let n = self.0.read_parts(buf, &mut over).ok()?;
            if n <= buf.len() {
                return Some(n);
            }
        }
    }

    fn readable(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.0.as_fd()
    }
}

impl UplinkBridge {
    fn spawn(tap: Tap, uplink: Arc<dyn Cable>) -> std::io::Result<UplinkBridge> {
        let stop = Arc::new(AtomicBool::new(false));
        let name = tap.name().to_string();
        let tap = Arc::new(TapWire(tap));
        if uplink.plug(tap.clone()) {
            return Ok(UplinkBridge {
                cable: uplink,
                stop,
                threads: Vec::new(),
            });
        }
        let (t1, u1, s1) = (tap.clone(), uplink.clone(), stop.clone());
        let to_wire = std::thread::Builder::new()
            .name(format!("uplink-{name}-out"))
            .spawn(move || {
                let mut buf = vec![0u8; hw_sim::MAX_WIRE_FRAME];
                while !s1.load(Ordering::Relaxed) {
                    if let Some(n) = u1.recv_into(&mut buf, Duration::from_millis(50)) {
                        let _ = t1.0.write_frame(&buf[..n]);
                    }
                }
            })?;
        let (t2, u2, s2) = (tap, uplink.clone(), stop.clone());
        let to_nic = std::thread::Builder::new()
            .name(format!("uplink-{name}-in"))
            .spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !s2.load(Ordering::Relaxed) {
                    let mut fds = [libc::pollfd {
                        fd: t2.0.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    }];
                    // SAFETY: one valid pollfd for the duration of the call.
                    unsafe { libc::poll(fds.as_mut_ptr(), 1, 50) };
                    while let Ok(n) = t2.0.read_frame(&mut buf) {
                        u2.send(&buf[..n]);
                    }
                }
            })?;
        Ok(UplinkBridge {
            cable: uplink,
            stop,
            threads: vec![to_wire, to_nic],
        })
    }
}

impl Drop for UplinkBridge {
    fn drop(&mut self) {
        self.cable.unplug();
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
