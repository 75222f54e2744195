//! The shape of the synthetic tree: its nodes, their qids, names, parents and permissions.
//!
//! Qid paths are fixed numbers for the fixed files and computed ones for the rest, never 0 and
//! never shared (intro(5): the path is unique among a server's files):
//!
//! | node | qid path |
//! |---|---|
//! | fixed files and directories | 1 to 14 |
//! | `stats/coreK` | `0x100 + K` |
//! | `net/PROTO/N` and its files | `(proto + 1) << 40 \| N << 4 \| file` (file 0 is the directory) |

use std::rc::Rc;

use cairn_9p::codec::{qid_type, Qid};
use cairn_9p::server::dtype;

use super::net::{Conn, Proto};

/// A file of `dev/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DevFile {
    Null,
    Zero,
    Random,
    Time,
    Cons,
}

/// A file of `stats/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatsFile {
    All,
    Core(usize),
}

/// A file of a conversation directory `net/PROTO/N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnFile {
    Ctl = 1,
    Data = 2,
    Listen = 3,
    Local = 4,
    Remote = 5,
    Status = 6,
}

impl ConnFile {
    /// Every file of a conversation directory, in listing order.
    pub(crate) const ALL: [ConnFile; 6] = [
        ConnFile::Ctl,
        ConnFile::Data,
        ConnFile::Listen,
        ConnFile::Local,
        ConnFile::Remote,
        ConnFile::Status,
    ];

    /// The file's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ConnFile::Ctl => "ctl",
            ConnFile::Data => "data",
            ConnFile::Listen => "listen",
            ConnFile::Local => "local",
            ConnFile::Remote => "remote",
            ConnFile::Status => "status",
        }
    }
}

/// A file or directory of the tree.
#[derive(Clone)]
pub(crate) enum Node {
    Root,
    DevDir,
    Dev(DevFile),
    StatsDir,
    Stats(StatsFile),
    NetDir,
    ProtoDir(Proto),
    Clone(Proto),
    ConnDir(Rc<Conn>),
    ConnFile(Rc<Conn>, ConnFile),
}

/// The files of `dev/`, in listing order.
pub(crate) const DEV_FILES: [(&str, DevFile); 5] = [
    ("null", DevFile::Null),
    ("zero", DevFile::Zero),
    ("random", DevFile::Random),
    ("time", DevFile::Time),
    ("cons", DevFile::Cons),
];

/// The protocol directories of `net/`, in listing order.
pub(crate) const PROTOS: [Proto; 2] = [Proto::Tcp, Proto::Udp];

fn proto_index(p: Proto) -> u64 {
    match p {
        Proto::Tcp => 0,
        Proto::Udp => 1,
    }
}

fn conn_path(conn: &Conn, file: u64) -> u64 {
    ((proto_index(conn.proto()) + 1) << 40) | (u64::from(conn.number()) << 4) | file
}

impl Node {
    /// Whether the node is a directory.
    pub(crate) fn is_dir(&self) -> bool {
        matches!(
            self,
            Node::Root
                | Node::DevDir
                | Node::StatsDir
                | Node::NetDir
                | Node::ProtoDir(_)
                | Node::ConnDir(_)
        )
    }

    /// The node's qid.
    pub(crate) fn qid(&self) -> Qid {
        let path = match self {
            Node::Root => 1,
            Node::DevDir => 2,
            Node::Dev(DevFile::Null) => 3,
            Node::Dev(DevFile::Zero) => 4,
            Node::Dev(DevFile::Random) => 5,
            Node::Dev(DevFile::Time) => 6,
            Node::Dev(DevFile::Cons) => 7,
            Node::StatsDir => 8,
            Node::Stats(StatsFile::All) => 9,
            Node::NetDir => 10,
            Node::ProtoDir(p) => 11 + proto_index(*p),
            Node::Clone(p) => 13 + proto_index(*p),
            Node::Stats(StatsFile::Core(k)) => 0x100 + *k as u64,
            Node::ConnDir(c) => conn_path(c, 0),
            Node::ConnFile(c, f) => conn_path(c, *f as u64),
        };
        let ty = if self.is_dir() { qid_type::QTDIR } else { qid_type::QTFILE };
        Qid { ty, version: 0, path }
    }

    /// The directory holding this node (the root holds itself).
    pub(crate) fn parent(&self) -> Node {
        match self {
            Node::Root | Node::DevDir | Node::StatsDir | Node::NetDir => Node::Root,
            Node::Dev(_) => Node::DevDir,
            Node::Stats(_) => Node::StatsDir,
            Node::ProtoDir(_) => Node::NetDir,
            Node::Clone(p) => Node::ProtoDir(*p),
            Node::ConnDir(c) => Node::ProtoDir(c.proto()),
            Node::ConnFile(c, _) => Node::ConnDir(c.clone()),
        }
    }

    /// Permission bits (Linux `st_mode` without the type): directories `0555`; files `0666`
    /// when they take writes, `0444` when they only read.
    pub(crate) fn permissions(&self) -> u32 {
        if self.is_dir() {
            0o555
        } else if self.writable() {
            0o666
        } else {
            0o444
        }
    }

    /// Whether writing the file does something.
    pub(crate) fn writable(&self) -> bool {
        matches!(
            self,
            Node::Dev(DevFile::Null | DevFile::Cons)
                | Node::Clone(_)
                | Node::ConnFile(_, ConnFile::Ctl | ConnFile::Data | ConnFile::Listen)
        )
    }

    /// The Linux `d_type` of the node in a directory listing. Device files are listed as
    /// regular files: a client that saw a character device would open its own device instead.
    pub(crate) fn dtype(&self) -> u8 {
        if self.is_dir() {
            dtype::DT_DIR
        } else {
            dtype::DT_REG
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::net::ConnTable;
    use std::collections::HashSet;

    #[test]
    fn qid_paths_are_unique_and_never_zero() {
        let tcp = ConnTable::new(Proto::Tcp);
        let udp = ConnTable::new(Proto::Udp);
        let (t0, t1, u0) = (tcp.create().unwrap(), tcp.create().unwrap(), udp.create().unwrap());
        let mut nodes = vec![Node::Root, Node::DevDir, Node::StatsDir, Node::NetDir];
        nodes.extend(DEV_FILES.iter().map(|(_, f)| Node::Dev(*f)));
        nodes.push(Node::Stats(StatsFile::All));
        nodes.extend((0..4).map(|k| Node::Stats(StatsFile::Core(k))));
        for p in PROTOS {
            nodes.push(Node::ProtoDir(p));
            nodes.push(Node::Clone(p));
        }
        for c in [&t0, &t1, &u0] {
            nodes.push(Node::ConnDir(c.clone()));
            nodes.extend(ConnFile::ALL.iter().map(|f| Node::ConnFile(c.clone(), *f)));
        }
        let paths: HashSet<u64> = nodes.iter().map(|n| n.qid().path).collect();
        assert_eq!(paths.len(), nodes.len(), "every node has its own path");
        assert!(!paths.contains(&0));
        for n in &nodes {
            assert_eq!(n.qid().ty == qid_type::QTDIR, n.is_dir());
        }
    }

    #[test]
    fn parents_lead_to_the_root() {
        let tcp = ConnTable::new(Proto::Tcp);
        let c = tcp.create().unwrap();
        let mut n = Node::ConnFile(c, ConnFile::Data);
        let mut steps = 0;
        while !matches!(n, Node::Root) {
            n = n.parent();
            steps += 1;
            assert!(steps < 10);
        }
        assert_eq!(steps, 4, "data -> N -> tcp -> net -> root");
        assert!(matches!(Node::Root.parent(), Node::Root));
    }
}
