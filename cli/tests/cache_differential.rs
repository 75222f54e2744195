//! Differential test: the same seeded random command stream goes to the real memcached (the
//! reference) and to the server under test, one command at a time over raw TCP, and the
//! replies must be the same bytes.
//!
//! The stream (5,000 commands over a few hundred keys) covers every text command (storage with
//! and without noreply, retrieval, gat/gats, cas, delete, incr/decr, touch, flush_all, stats,
//! version, verbosity, quit) and the meta commands (mg, ms, md, ma, mn with their flags), mixed
//! with malformed lines. Each command is followed by `mn`, whose `MN` reply marks the end of the
//! command's replies (including none, for noreply). At the end every key is read back from both.
//!
//! Replies are compared exactly, except for what must differ between two correct servers, which
//! is normalised the same way on both sides:
//! - cas unique numbers (in `VALUE` lines and meta `c` flags) become their order of first
//!   appearance on that server; a command that needs a cas value sends each server its own
//!   value for the same order number;
//! - the `VERSION` string, the lines of every `stats` reply, and meta `t` (remaining ttl)
//!   values above zero, which depend on the second the command lands in;
//! - a number that decr made shorter: memcached may pad it with spaces (protocol.txt allows it).
//!
//! Against memcached the target is a second memcached, and there must be zero differences.
//! `CACHE_DIFF_TRACE=FILE` writes the whole transcript (commands, normalised replies) to FILE.

mod cache_common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cache_common::{against_each_target, Rng, Server, Target};

against_each_target!(random_commands_match_memcached);

/// Commands in the stream.
const COMMANDS: usize = 5_000;
/// The stream's seed: the same stream every run.
const SEED: u64 = 0x00ca_1e5e_ed00_0001;
/// Plain keys `k0..`; values of any bytes from `[a-z0-9]`.
const PLAIN_KEYS: u64 = 300;
/// Counter keys `n0..`: numbers, used by incr/decr/ma (never appended to, never asked for
/// their size, since memcached may pad a shortened number).
const COUNTER_KEYS: u64 = 20;
/// The whole test must end within this.
const TIME_LIMIT: Duration = Duration::from_secs(120);
/// How long to wait for one command's replies.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// The differences shown in full when the test fails.
const SHOWN: usize = 10;

/// One piece of a command: bytes, or a cas value named by its order of first appearance.
#[derive(Clone, Debug)]
enum Part {
    Text(Vec<u8>),
    /// The n-th distinct cas value this server has shown.
    Cas(usize),
}

/// A command and whether the server closes the connection after it (`quit`).
struct Cmd {
    parts: Vec<Part>,
    closes: bool,
}

impl Cmd {
    fn text(s: impl Into<Vec<u8>>) -> Cmd {
        Cmd { parts: vec![Part::Text(s.into())], closes: false }
    }

    fn push(&mut self, s: impl AsRef<[u8]>) {
        self.parts.push(Part::Text(s.as_ref().to_vec()));
    }

    /// How many `mn` lines the command itself holds.
    fn mn_lines(&self) -> usize {
        let mut bytes = Vec::new();
        for p in &self.parts {
            if let Part::Text(t) = p {
                bytes.extend_from_slice(t);
            }
        }
        (0..bytes.len())
            .filter(|&i| {
                bytes[i..].starts_with(b"mn\r\n") && (i == 0 || bytes[..i].ends_with(b"\r\n"))
            })
            .count()
    }

    /// A human-readable rendering (cas as `<cas#n>`) for failure messages.
    fn show(&self) -> String {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => s.push_str(&String::from_utf8_lossy(t)),
                Part::Cas(n) => s.push_str(&format!("<cas#{n}>")),
            }
        }
        truncate(&s)
    }
}

fn truncate(s: &str) -> String {
    if s.len() > 300 {
        format!("{}...({} bytes)", &s[..300], s.len())
    } else {
        s.to_string()
    }
}

/// One server's side of the comparison: its connection and its cas numbering.
struct Side {
    port: u16,
    stream: TcpStream,
    /// cas values in order of first appearance.
    cas_order: Vec<u64>,
    cas_index: HashMap<u64, usize>,
}

impl Side {
    fn new(server: &Server) -> Side {
        Side {
            port: server.port,
            stream: Side::open(server.port),
            cas_order: Vec::new(),
            cas_index: HashMap::new(),
        }
    }

    fn open(port: u16) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        s.set_write_timeout(Some(REPLY_TIMEOUT)).expect("timeout");
        s
    }

    fn reconnect(&mut self) {
        self.stream = Side::open(self.port);
    }

    /// The bytes of `cmd` for this server, followed by `mn` unless the command closes.
    fn render(&self, cmd: &Cmd) -> Vec<u8> {
        let mut out = Vec::new();
        for p in &cmd.parts {
            match p {
                Part::Text(t) => out.extend_from_slice(t),
                Part::Cas(n) => {
                    // A cas this server never showed: a value no item has.
                    let v = self.cas_order.get(*n).copied().unwrap_or(u64::MAX - 7);
                    out.extend_from_slice(v.to_string().as_bytes());
                }
            }
        }
        if !cmd.closes {
            out.extend_from_slice(b"mn\r\n");
        }
        out
    }

    /// Sends `cmd` and returns its normalised replies.
    fn exchange(&mut self, cmd: &Cmd) -> String {
        let bytes = self.render(cmd);
        if self.stream.write_all(&bytes).is_err() {
            self.reconnect();
            return "<write failed: connection closed>".into();
        }
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut got = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        // The command's own `mn` lines (if it is one) and the closing one.
        let wanted = 1 + cmd.mn_lines();
        let end = loop {
            if !cmd.closes && ends_with_mn(&got) && count_mn(&got) >= wanted {
                break "";
            }
            match self.stream.read(&mut buf) {
                Ok(0) => break "<closed>",
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    if Instant::now() > deadline {
                        break "<timeout>";
                    }
                }
                Err(_) => break "<closed>",
            }
        };
        if !end.is_empty() {
            self.reconnect();
        } else {
            got.truncate(got.len() - 4);
        }
        let mut text = self.normalise(&got);
        text.push_str(end);
        text
    }

    fn cas_number(&mut self, v: u64) -> usize {
        let next = self.cas_order.len();
        let n = *self.cas_index.entry(v).or_insert(next);
        if n == next {
            self.cas_order.push(v);
        }
        n
    }

    /// The replies with cas values numbered, and the parts that must differ replaced.
    fn normalise(&mut self, raw: &[u8]) -> String {
        let mut out = String::new();
        let mut rest = raw;
        let mut in_stats = false;
        while !rest.is_empty() {
            let Some(eol) = find(rest, b"\r\n") else {
                out.push_str(&format!("<partial line {:?}>", String::from_utf8_lossy(rest)));
                break;
            };
            let line = String::from_utf8_lossy(&rest[..eol]).into_owned();
            rest = &rest[eol + 2..];
            let words: Vec<&str> = line.split(' ').collect();
            // A data block follows `VALUE key flags len [cas]` and `VA len flags*`.
            let data_len = match words[0] {
                "VALUE" if words.len() >= 4 => words[3].parse::<usize>().ok(),
                "VA" if words.len() >= 2 => words[1].parse::<usize>().ok(),
                _ => None,
            };
            if words[0] == "STAT" {
                if !in_stats {
                    out.push_str("<stats>\n");
                    in_stats = true;
                }
                continue;
            }
            in_stats = false;
            let mut data = None;
            if let Some(len) = data_len {
                if rest.len() >= len + 2 {
                    data = Some(unpad_number(&rest[..len]));
                    rest = &rest[len + 2..];
                }
            }
            let mut norm: Vec<String> = Vec::new();
            for (i, w) in words.iter().enumerate() {
                let w = *w;
                let n = match (words[0], i) {
                    ("VERSION", 1) => "<version>".to_string(),
                    ("VALUE", 3) | ("VA", 1) if data.is_some() => {
                        data.as_ref().map(|d| d.len().to_string()).unwrap_or_default()
                    }
                    ("VALUE", 4) => match w.parse::<u64>() {
                        Ok(v) => format!("<cas#{}>", self.cas_number(v)),
                        Err(_) => w.to_string(),
                    },
                    (head, i) if i > 0 && is_meta_reply(head) => self.meta_flag(w),
                    _ => w.to_string(),
                };
                norm.push(n);
            }
            out.push_str(&norm.join(" "));
            out.push('\n');
            if let Some(d) = data {
                out.push_str(&String::from_utf8_lossy(&d));
                out.push('\n');
            }
        }
        out
    }

    fn meta_flag(&mut self, w: &str) -> String {
        let (flag, value) = w.split_at(w.len().min(1));
        match flag {
            "c" => match value.parse::<u64>() {
                Ok(v) => format!("c<cas#{}>", self.cas_number(v)),
                Err(_) => w.to_string(),
            },
            "t" => match value.parse::<i64>() {
                Ok(v) if v > 0 => "t<ttl>".to_string(),
                _ => w.to_string(),
            },
            _ => w.to_string(),
        }
    }
}

fn is_meta_reply(head: &str) -> bool {
    matches!(head, "HD" | "VA" | "EN" | "NF" | "NS" | "EX" | "MN")
}

/// Whether `got` ends with the `MN` reply that closes one command's replies.
fn ends_with_mn(got: &[u8]) -> bool {
    got == b"MN\r\n" || got.ends_with(b"\r\nMN\r\n")
}

/// How many `MN` reply lines `got` holds (values never hold capitals, so no false matches).
fn count_mn(got: &[u8]) -> usize {
    (0..got.len())
        .filter(|&i| got[i..].starts_with(b"MN\r\n") && (i == 0 || got[..i].ends_with(b"\r\n")))
        .count()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A number followed by spaces (memcached's in-place decr) loses the spaces.
fn unpad_number(data: &[u8]) -> Vec<u8> {
    let digits = data.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > 0 && digits < data.len() && data[digits..].iter().all(|&b| b == b' ') {
        data[..digits].to_vec()
    } else {
        data.to_vec()
    }
}

/// Generates the command stream.
struct Gen {
    rng: Rng,
    /// How many distinct cas values the reference has shown (commands may name any of them).
    cas_seen: usize,
}

impl Gen {
    fn plain_key(&mut self) -> String {
        format!("k{}", self.rng.below(PLAIN_KEYS))
    }

    fn counter_key(&mut self) -> String {
        format!("n{}", self.rng.below(COUNTER_KEYS))
    }

    fn any_key(&mut self) -> String {
        if self.rng.percent(20) {
            self.counter_key()
        } else {
            self.plain_key()
        }
    }

    /// 0 (never), -1 (already expired), far future, or an absolute unix time far ahead.
    fn exptime(&mut self) -> String {
        match self.rng.below(10) {
            0 => "-1".into(),
            1 => "100000".into(),
            2 => "2000000000".into(),
            _ => "0".into(),
        }
    }

    fn flags(&mut self) -> String {
        match self.rng.below(6) {
            0 => u32::MAX.to_string(),
            1 => self.rng.below(1 << 16).to_string(),
            _ => "0".into(),
        }
    }

    fn value(&mut self) -> Vec<u8> {
        let len = match self.rng.below(20) {
            0 => self.rng.range(1000, 20_000),
            1 => 0,
            _ => self.rng.range(1, 100),
        };
        self.rng.alnum(len as usize)
    }

    fn number(&mut self) -> Vec<u8> {
        match self.rng.below(8) {
            0 => b"18446744073709551615".to_vec(),
            1 => b"18446744073709551610".to_vec(),
            _ => self.rng.below(100_000).to_string().into_bytes(),
        }
    }

    fn noreply(&mut self) -> &'static str {
        if self.rng.percent(15) {
            " noreply"
        } else {
            ""
        }
    }

    fn cas_part(&mut self) -> Part {
        if self.cas_seen == 0 || self.rng.percent(15) {
            Part::Text(self.rng.range(1, 1 << 40).to_string().into_bytes())
        } else {
            // Mostly recent values, sometimes old ones.
            let n = if self.rng.percent(70) {
                self.cas_seen - 1 - self.rng.below(self.cas_seen.min(5) as u64) as usize
            } else {
                self.rng.below(self.cas_seen as u64) as usize
            };
            Part::Cas(n)
        }
    }

    fn next(&mut self) -> Cmd {
        match self.rng.below(100) {
            0..=17 => self.storage(),
            18..=29 => self.retrieval(),
            30..=33 => self.cas(),
            34..=38 => {
                let key = self.any_key();
                let nr = self.noreply();
                Cmd::text(format!("delete {key}{nr}\r\n"))
            }
            39..=46 => self.arith(),
            47..=49 => {
                let (key, exp, nr) = (self.any_key(), self.exptime(), self.noreply());
                Cmd::text(format!("touch {key} {exp}{nr}\r\n"))
            }
            50..=59 => self.meta_get(),
            60..=67 => self.meta_set(),
            68..=70 => self.meta_delete(),
            71..=76 => self.meta_arith(),
            77..=79 => self.misc(),
            80..=84 => self.bad_line(),
            85..=89 => {
                // a counter set to a number
                let (key, n) = (self.counter_key(), self.number());
                let mut c = Cmd::text(format!("set {key} 0 0 {}\r\n", n.len()));
                c.push(n);
                c.push(b"\r\n");
                c
            }
            _ => self.retrieval(),
        }
    }

    fn storage(&mut self) -> Cmd {
        let verb =
            ["set", "set", "add", "replace", "append", "prepend"][self.rng.below(6) as usize];
        let key =
            if verb == "append" || verb == "prepend" { self.plain_key() } else { self.any_key() };
        let (flags, exp, value, nr) = (self.flags(), self.exptime(), self.value(), self.noreply());
        let mut c = Cmd::text(format!("{verb} {key} {flags} {exp} {}{nr}\r\n", value.len()));
        c.push(value);
        c.push(b"\r\n");
        c
    }

    fn keys(&mut self) -> String {
        let n = if self.rng.percent(10) { self.rng.range(10, 40) } else { self.rng.range(1, 4) };
        (0..n).map(|_| self.any_key()).collect::<Vec<_>>().join(" ")
    }

    fn retrieval(&mut self) -> Cmd {
        let keys = self.keys();
        match self.rng.below(4) {
            0 => Cmd::text(format!("gets {keys}\r\n")),
            1 => {
                let exp = self.exptime();
                let verb = if self.rng.percent(50) { "gat" } else { "gats" };
                Cmd::text(format!("{verb} {exp} {keys}\r\n"))
            }
            _ => Cmd::text(format!("get {keys}\r\n")),
        }
    }

    fn cas(&mut self) -> Cmd {
        let (key, flags, exp, value) =
            (self.plain_key(), self.flags(), self.exptime(), self.value());
        let mut c = Cmd::text(format!("cas {key} {flags} {exp} {} ", value.len()));
        c.parts.push(self.cas_part());
        let nr = self.noreply();
        c.push(format!("{nr}\r\n"));
        c.push(value);
        c.push(b"\r\n");
        c
    }

    fn arith(&mut self) -> Cmd {
        let verb = if self.rng.percent(50) { "incr" } else { "decr" };
        let key = if self.rng.percent(85) { self.counter_key() } else { self.plain_key() };
        let delta = match self.rng.below(10) {
            0 => "18446744073709551615".to_string(),
            1 => "abc".to_string(),
            2 => "-1".to_string(),
            _ => self.rng.range(0, 1000).to_string(),
        };
        let nr = self.noreply();
        Cmd::text(format!("{verb} {key} {delta}{nr}\r\n"))
    }

    fn opaque(&mut self, flags: &mut Vec<String>) {
        if self.rng.percent(20) {
            flags.push(format!("O{}", self.rng.below(1000)));
        }
    }

    fn meta_get(&mut self) -> Cmd {
        let counter = self.rng.percent(25);
        let key = if counter { self.counter_key() } else { self.plain_key() };
        let mut flags = Vec::new();
        let choices: &[&str] = if counter {
            &["v", "k", "f", "t", "c", "h", "q"]
        } else {
            &["v", "k", "f", "t", "c", "h", "q", "s"]
        };
        for f in choices {
            if self.rng.percent(35) {
                flags.push(f.to_string());
            }
        }
        if self.rng.percent(10) {
            flags.push(format!("T{}", self.exptime()));
        }
        if self.rng.percent(5) {
            flags.push("N100000".into());
        }
        self.opaque(&mut flags);
        Cmd::text(format!("mg {key} {}\r\n", flags.join(" ")).replace(" \r\n", "\r\n"))
    }

    fn meta_set(&mut self) -> Cmd {
        let key = self.plain_key();
        let value = self.value();
        let mut flags = Vec::new();
        if self.rng.percent(30) {
            flags.push(format!("F{}", self.flags()));
        }
        if self.rng.percent(20) {
            flags.push(format!("T{}", self.exptime()));
        }
        for f in ["q", "k", "c", "I"] {
            if self.rng.percent(15) {
                flags.push(f.to_string());
            }
        }
        if self.rng.percent(35) {
            let mode = ["E", "A", "P", "R", "S"][self.rng.below(5) as usize];
            flags.push(format!("M{mode}"));
        }
        self.opaque(&mut flags);
        let mut c = Cmd::text(format!("ms {key} {}", value.len()));
        for f in &flags {
            c.push(format!(" {f}"));
        }
        if self.rng.percent(20) {
            c.push(" C");
            c.parts.push(self.cas_part());
        }
        c.push(b"\r\n");
        c.push(value);
        c.push(b"\r\n");
        c
    }

    fn meta_delete(&mut self) -> Cmd {
        let key = self.any_key();
        let mut c = Cmd::text(format!("md {key}"));
        for f in ["q", "k"] {
            if self.rng.percent(25) {
                c.push(format!(" {f}"));
            }
        }
        if self.rng.percent(15) {
            c.push(" C");
            c.parts.push(self.cas_part());
        }
        let mut flags = Vec::new();
        self.opaque(&mut flags);
        for f in flags {
            c.push(format!(" {f}"));
        }
        c.push(b"\r\n");
        c
    }

    fn meta_arith(&mut self) -> Cmd {
        let key = if self.rng.percent(90) { self.counter_key() } else { self.plain_key() };
        let mut flags = Vec::new();
        if self.rng.percent(30) {
            // N takes a TTL, not an exptime: "-1" would become N1, a one-second TTL whose
            // expiry depends on where each server's clock ticks, not on the protocol.
            let ttl = match self.exptime().as_str() {
                "-1" => "0".to_string(),
                other => other.to_string(),
            };
            flags.push(format!("N{ttl}"));
            flags.push(format!("J{}", self.rng.below(1000)));
        }
        if self.rng.percent(50) {
            flags.push(format!("D{}", self.rng.below(1000)));
        }
        if self.rng.percent(40) {
            let mode = ["I", "+", "D", "-"][self.rng.below(4) as usize];
            flags.push(format!("M{mode}"));
        }
        for f in ["v", "t", "c", "q", "k"] {
            if self.rng.percent(25) {
                flags.push(f.to_string());
            }
        }
        self.opaque(&mut flags);
        Cmd::text(format!("ma {key} {}\r\n", flags.join(" ")).replace(" \r\n", "\r\n"))
    }

    fn misc(&mut self) -> Cmd {
        match self.rng.below(20) {
            0 => {
                let nr = self.noreply();
                Cmd::text(format!("flush_all{nr}\r\n"))
            }
            // (No delayed flush_all: whether memcached still returns an item flushed before a
            // later delayed flush depends on whether its LRU crawler reaped it meanwhile.)
            1 => Cmd::text("flush_all 0\r\n"),
            2..=4 => Cmd::text("version\r\n"),
            5..=7 => {
                let nr = self.noreply();
                Cmd::text(format!("verbosity {}{nr}\r\n", self.rng.below(2)))
            }
            8 => Cmd::text("stats\r\n"),
            9 => Cmd::text("stats settings\r\n"),
            10 => Cmd::text("stats items\r\n"),
            11 => Cmd::text("stats slabs\r\n"),
            12 => Cmd { parts: vec![Part::Text(b"quit\r\n".to_vec())], closes: true },
            _ => Cmd::text("mn\r\n"),
        }
    }

    fn bad_line(&mut self) -> Cmd {
        let long_key = "x".repeat(251);
        match self.rng.below(14) {
            0 => Cmd::text("foo bar baz\r\n"),
            1 => Cmd::text("\r\n"),
            2 => Cmd::text("get\r\n"),
            3 => Cmd::text(format!("get {long_key}\r\n")),
            4 => Cmd::text(format!("set {long_key} 0 0 1\r\na\r\n")),
            5 => Cmd::text("set k1 0 0 abc\r\n"),
            6 => Cmd::text("set k1 0 0 -1\r\n"),
            7 => Cmd::text("set k2 0 0 3\r\nabcdef\r\n"),
            8 => Cmd::text("cas k3 0 0 1\r\na\r\n"),
            9 => Cmd::text("incr\r\n"),
            10 => Cmd::text("mg k4 v &\r\n"),
            11 => Cmd::text("ms k5\r\n"),
            12 => Cmd::text("set k6 notanumber 0 1\r\na\r\n"),
            _ => Cmd::text("GET k7\r\n"),
        }
    }
}

/// Every reply to a seeded stream of 5,000 commands (all text and meta commands, noreply
/// variants, malformed lines) and every key's final state match memcached's, after normalising
/// only what may differ (see the module doc).
fn random_commands_match_memcached(target: Target) {
    let reference = Server::start(Target::Memcached);
    let tested = Server::start(target);
    let mut a = Side::new(&reference);
    let mut b = Side::new(&tested);
    let mut gen = Gen { rng: Rng::new(SEED), cas_seen: 0 };
    let start = Instant::now();
    let mut diffs = Vec::new();
    let mut compared = 0usize;
    let mut replies = 0usize;
    // How often each kind of reply line (its first word; numbers as "<n>") came from memcached.
    let mut kinds: HashMap<String, usize> = HashMap::new();
    // CACHE_DIFF_TRACE=FILE writes every command and both normalised replies to FILE.
    let mut trace = std::env::var_os("CACHE_DIFF_TRACE")
        .map(|path| std::io::BufWriter::new(std::fs::File::create(path).expect("trace file")));
    let mut compare = |cmd: &Cmd, a: &mut Side, b: &mut Side, diffs: &mut Vec<String>| {
        let (ra, rb) = (a.exchange(cmd), b.exchange(cmd));
        compared += 1;
        if let Some(t) = trace.as_mut() {
            let _ = writeln!(
                t,
                ">>> {}\n{ra}{}",
                cmd.show(),
                if ra == rb { "" } else { "!!! DIFFERS\n" }
            );
        }
        if !ra.is_empty() {
            replies += 1;
        }
        for line in ra.lines() {
            let word = line.split(' ').next().unwrap_or_default();
            if word.starts_with('<')
                || word.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                || word.chars().all(|c| c.is_ascii_digit())
            {
                let word =
                    if word.starts_with(|c: char| c.is_ascii_digit()) { "<n>" } else { word };
                *kinds.entry(word.to_string()).or_default() += 1;
            }
        }
        if ra != rb {
            diffs.push(format!(
                "command {compared}: {}\n  memcached: {}\n  {}: {}",
                cmd.show(),
                truncate(&ra),
                target.name(),
                truncate(&rb)
            ));
        }
    };
    for _ in 0..COMMANDS {
        assert!(start.elapsed() < TIME_LIMIT, "the stream took longer than {TIME_LIMIT:?}");
        let cmd = gen.next();
        compare(&cmd, &mut a, &mut b, &mut diffs);
        gen.cas_seen = a.cas_order.len();
    }
    // The final state of every key.
    for i in 0..PLAIN_KEYS {
        compare(&Cmd::text(format!("mg k{i} v f\r\n")), &mut a, &mut b, &mut diffs);
    }
    for i in 0..COUNTER_KEYS {
        compare(&Cmd::text(format!("get n{i}\r\n")), &mut a, &mut b, &mut diffs);
    }
    eprintln!(
        "{compared} commands compared ({replies} with replies), {} distinct cas values, {} \
         differences, {:?}",
        a.cas_order.len(),
        diffs.len(),
        start.elapsed()
    );
    let mut seen: Vec<_> = kinds.iter().collect();
    seen.sort();
    eprintln!("reply kinds: {seen:?}");
    assert!(replies > COMMANDS / 2, "too few commands had replies: {replies}");
    // The stream reaches every kind of outcome.
    for kind in [
        "STORED",
        "NOT_STORED",
        "EXISTS",
        "NOT_FOUND",
        "DELETED",
        "TOUCHED",
        "VALUE",
        "END",
        "<n>",
        "OK",
        "ERROR",
        "CLIENT_ERROR",
        "VERSION",
        "<stats>",
        "<closed>",
        "HD",
        "VA",
        "EN",
        "NF",
        "NS",
        "EX",
        "MN",
    ] {
        assert!(kinds.contains_key(kind), "no {kind} reply in the whole stream: {seen:?}");
    }
    assert!(
        diffs.is_empty(),
        "{} differences from memcached; the first {SHOWN}:\n{}",
        diffs.len(),
        diffs.iter().take(SHOWN).cloned().collect::<Vec<_>>().join("\n")
    );
    drop((reference, tested));
}
