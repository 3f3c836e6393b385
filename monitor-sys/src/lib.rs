//! The workspace's only unsafe code: the Linux system calls that no maintained crate wraps
//! (`TCP_INFO` for the engine; packet sockets and `setns` for the network-namespace tests;
//! a thread's nice value for `watch`; glibc's allocator figures and `malloc_trim` for
//! `watch`'s start-up), each behind a safe function that checks its inputs and outputs.
//!
//! Every other crate of the workspace forbids `unsafe`. On platforms other than Linux the
//! functions return `None` or an [`std::io::ErrorKind::Unsupported`] error.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

/// The kernel's view of one TCP connection: the `tcp_info` fields the engine reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpInfo {
    /// Smoothed round-trip time (`tcpi_rtt`), in microseconds.
    pub rtt_us: u32,
    /// Round-trip time variance (`tcpi_rttvar`), in microseconds.
    pub rtt_var_us: u32,
    /// Segments retransmitted over the connection's life (`tcpi_total_retrans`).
    pub total_retrans: u32,
    /// Segments currently counted as lost (`tcpi_lost`).
    pub lost: u32,
}

/// Reads `TCP_INFO` of a TCP socket (one `getsockopt`); `None` where the platform has no
/// `TCP_INFO` or the socket is not TCP.
pub fn tcp_info(fd: BorrowedFd<'_>) -> Option<TcpInfo> {
    #[cfg(target_os = "linux")]
    {
        linux::tcp_info(fd)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = fd;
        None
    }
}

/// A raw packet socket (`AF_PACKET`, every protocol) bound to the interface with index
/// `ifindex`, which ignores the frames it sends itself and passes GSO and checksum
/// offload state in a `virtio_net_hdr` before each frame ([`VNET_HDR_LEN`] bytes), so
/// that a relay can hand frames on unchanged. A receive waits at most `read_timeout`
/// (then fails with `WouldBlock`). Needs `CAP_NET_RAW`.
pub fn packet_socket(ifindex: u32, read_timeout: std::time::Duration) -> io::Result<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        linux::packet_socket(ifindex, read_timeout)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (ifindex, read_timeout);
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// The size of the `virtio_net_hdr` before each frame of a [`packet_socket`].
pub const VNET_HDR_LEN: usize = 10;

/// Receives one frame into `buf` (one `recv`), returning its length.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    {
        linux::recv(fd, buf)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (fd, buf);
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Sends one frame (one `send`), returning how much was sent.
pub fn send(fd: BorrowedFd<'_>, frame: &[u8]) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    {
        linux::send(fd, frame)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (fd, frame);
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Moves the calling thread into the network namespace `ns` refers to (an open
/// `/run/netns/NAME`): sockets it creates afterwards live there. Needs `CAP_SYS_ADMIN`.
pub fn enter_net_namespace(ns: BorrowedFd<'_>) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        linux::enter_net_namespace(ns)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = ns;
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Runs the calling thread under `SCHED_FIFO` at a low real-time priority, so that it is
/// woken within microseconds on a machine busy with other work (a test's packet relay).
/// Needs `CAP_SYS_NICE`.
pub fn run_realtime() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        linux::run_realtime()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Lowers the calling thread's priority to nice 19, so that its work takes only the CPU
/// that threads of normal priority leave (`watch` renders a large `/metrics` so).
pub fn lower_thread_priority() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        linux::lower_thread_priority()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// The bytes the C allocator hands out now (glibc's `mallinfo2`: `uordblks` plus the
/// blocks it maps on their own), chunk headers included; `None` where the allocator is
/// not glibc's. For measuring what a structure costs, in tests and benches.
pub fn heap_in_use() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        Some(gnu::heap_in_use())
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// Gives the free memory of the C allocator's heaps back to the system (glibc's
/// `malloc_trim`), after a start-up that allocated and freed much (reading a large
/// bundle); whether any was given back. Does nothing where the allocator is not glibc's.
pub fn release_free_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        gnu::release_free_memory()
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
mod gnu {
    pub(super) fn heap_in_use() -> u64 {
        // SAFETY: `mallinfo2` has no preconditions and returns a plain struct.
        let info = unsafe { libc::mallinfo2() };
        (info.uordblks as u64).saturating_add(info.hblkhd as u64)
    }

    pub(super) fn release_free_memory() -> bool {
        // SAFETY: `malloc_trim` has no preconditions; 0 keeps no extra pad at the top.
        unsafe { libc::malloc_trim(0) == 1 }
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod linux {
    use std::io;
    use std::mem::{MaybeUninit, size_of};
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

    use super::TcpInfo;

    /// `linux/if_packet.h`, not exported by libc for every target.
    const PACKET_VNET_HDR: libc::c_int = 15;
    const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

    pub(super) fn tcp_info(fd: BorrowedFd<'_>) -> Option<TcpInfo> {
        let mut info = MaybeUninit::<libc::tcp_info>::zeroed();
        let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: `info` is valid for writes of `len` bytes and `len` is its size; the
        // kernel writes at most `len` bytes and sets `len` to what it wrote.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        // The fields read here all lie within the first 104 bytes, present since Linux 2.6.
        if rc != 0 || (len as usize) < 104 {
            return None;
        }
        // SAFETY: zero-initialised, then partly written by the kernel: every bit pattern
        // is a valid `tcp_info` (plain integers).
        let info = unsafe { info.assume_init() };
        Some(TcpInfo {
            rtt_us: info.tcpi_rtt,
            rtt_var_us: info.tcpi_rttvar,
            total_retrans: info.tcpi_total_retrans,
            lost: info.tcpi_lost,
        })
    }

    fn check(rc: libc::c_int) -> io::Result<()> {
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn set_int(
        fd: &OwnedFd,
        level: libc::c_int,
        name: libc::c_int,
        value: libc::c_int,
    ) -> io::Result<()> {
        // SAFETY: `value` is a live `c_int` and the length given is its size.
        check(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (&raw const value).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        })
    }

    pub(super) fn packet_socket(
        ifindex: u32,
        read_timeout: std::time::Duration,
    ) -> io::Result<OwnedFd> {
        let protocol = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain system call with integer arguments.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::c_int::from(protocol),
            )
        };
        check(raw)?;
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set_int(&fd, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)?;
        set_int(&fd, libc::SOL_PACKET, PACKET_VNET_HDR, 1)?;
        let timeout = libc::timeval {
            tv_sec: libc::time_t::try_from(read_timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_usec: libc::suseconds_t::from(read_timeout.subsec_micros().min(999_999) as i32),
        };
        // SAFETY: `timeout` is a live `timeval` and the length given is its size.
        check(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        })?;
        // SAFETY: an all-zero `sockaddr_ll` is valid; the fields are set below.
        let mut addr: libc::sockaddr_ll = unsafe { MaybeUninit::zeroed().assume_init() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol;
        addr.sll_ifindex = i32::try_from(ifindex).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: `addr` is a live `sockaddr_ll` and the length given is its size.
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(fd)
    }

    pub(super) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }

    pub(super) fn send(fd: BorrowedFd<'_>, frame: &[u8]) -> io::Result<usize> {
        // SAFETY: `frame` is valid for reads of `frame.len()` bytes.
        let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }

    pub(super) fn enter_net_namespace(ns: BorrowedFd<'_>) -> io::Result<()> {
        // SAFETY: plain system call on a borrowed, open descriptor.
        check(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) })
    }

    pub(super) fn run_realtime() -> io::Result<()> {
        let param = libc::sched_param { sched_priority: 10 };
        // SAFETY: `param` is a live `sched_param`; pid 0 is the calling thread.
        check(unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &raw const param) })
    }

    pub(super) fn lower_thread_priority() -> io::Result<()> {
        // SAFETY: `gettid` has no preconditions.
        let tid = unsafe { libc::gettid() };
        let who = libc::id_t::try_from(tid).map_err(|_| io::ErrorKind::InvalidData)?;
        // SAFETY: plain integers; on Linux the nice value of a thread id is that thread's.
        check(unsafe { libc::setpriority(libc::PRIO_PROCESS, who, 19) })
    }
}
