//! Free loopback ports for nodes started as child processes (`tests/demo.rs`,
//! `tests/crash_recovery.rs`, the chaos test).

/// Three free loopback ports of one region (redis, gossip, http).
pub struct Ports {
    /// The Redis (TCP) port.
    pub redis: u16,
    /// The gossip (UDP) port.
    pub gossip: u16,
    /// The HTTP (TCP) port.
    pub http: u16,
}

impl Ports {
    /// Free ports for `n` regions, all distinct: every socket stays bound until all are
    /// chosen (releasing each at once could hand the same port out twice, and did: a region's
    /// HTTP port equal to its Redis port). The child binds them a moment later; another
    /// process could take one meanwhile, which is rare and makes the start fail loudly.
    pub fn free(n: usize) -> Vec<Ports> {
        let mut held_tcp = Vec::new();
        let mut held_udp = Vec::new();
        let mut tcp = || {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            held_tcp.push(l);
            port
        };
        let mut ports = Vec::new();
        for _ in 0..n {
            let (redis, http) = (tcp(), tcp());
            let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let gossip = u.local_addr().unwrap().port();
            held_udp.push(u);
            ports.push(Ports {
                redis,
                gossip,
                http,
            });
        }
        ports
    }
}
