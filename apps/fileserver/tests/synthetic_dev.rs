//! The synthetic tree's devices, statistics and directories, driven through `FileServer` on a
//! hosted runtime: dev/null, zero, random, time and cons, stats/, listings and attributes.

mod synthetic_support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use cairn_9p::codec::{qid_type, setattr, SetAttr};
use cairn_9p::errno::{EACCES, EBADF, EISDIR, ENOENT, ENOTDIR, EPERM};
use cairn_9p::server::{dtype, FileServer};
use cairn_fileserver::synthetic::Synthetic;
use cairn_rt::event::{sleep_ns, spawn_local};
use synthetic_support::*;

#[test]
fn attach_takes_cairn_and_the_empty_name_only() {
    run_on_core(1, |rt| async move {
        let fs = Synthetic::new(rt);
        assert!(fs.attach("cairn", &who()).is_ok());
        assert!(fs.attach("", &who()).is_ok());
        assert_eq!(fs.attach("/tmp", &who()).err(), Some(ENOENT));
        let root = root(&fs);
        assert_eq!(fs.qid(&root).ty, qid_type::QTDIR);
        assert_ne!(fs.qid(&root).path, 0);
    });
}

#[test]
fn dev_null_reads_end_of_file_and_takes_every_write() {
    run_on_core(1, |rt| async move {
        let fs = Synthetic::new(rt);
        let null = open(&fs, "dev/null", O_RDWR).unwrap();
        assert!(fs.read(&null, 0, 4096).await.unwrap().is_empty());
        for size in [0usize, 1, 64, 1024, 65536] {
            let data = vec![0xAB; size];
            assert_eq!(fs.write(&null, 12345, &data).await, Ok(size as u32));
        }
        let reader = open(&fs, "dev/null", O_RDONLY).unwrap();
        assert_eq!(fs.write(&reader, 0, b"x").await, Err(EBADF), "not opened for writing");
        let unopened = walk(&fs, "dev/null").unwrap();
        assert_eq!(fs.write(&unopened, 0, b"x").await, Err(EBADF));
    });
}

#[test]
fn dev_zero_reads_count_zeros_and_refuses_writes() {
    run_on_core(1, |rt| async move {
        let fs = Synthetic::new(rt);
        let zero = open(&fs, "dev/zero", O_RDONLY).unwrap();
        for count in [1u32, 100, 8192, 65536] {
            let buf = fs.read(&zero, 7, count).await.unwrap();
            assert_eq!(buf.len(), count as usize);
            assert!(buf.iter().all(|&b| b == 0));
        }
        assert_eq!(open(&fs, "dev/zero", O_WRONLY).err(), Some(EACCES));
    });
}

#[test]
fn dev_random_reads_fresh_random_bytes() {
    run_on_core(1, |rt| async move {
        let fs = Synthetic::new(rt);
        let random = open(&fs, "dev/random", O_RDONLY).unwrap();
        let a = fs.read(&random, 0, 4096).await.unwrap();
        let b = fs.read(&random, 0, 4096).await.unwrap();
        assert_eq!((a.len(), b.len()), (4096, 4096));
        assert_ne!(a.as_slice(), b.as_slice());
        // 4096 random bytes take nearly every value; a constant or counter would not.
        let distinct: HashSet<u8> = a.iter().copied().collect();
        assert!(distinct.len() > 200, "only {} distinct byte values", distinct.len());
    });
}

#[test]
fn dev_time_reads_plan9_fields_that_advance() {
    run_on_core(1, |rt| async move {
        let fs = Synthetic::new(rt);
        let parse = |t: String| -> Vec<u64> {
            assert_eq!(t.len(), 78, "{t:?}");
            t.split_whitespace().map(|f| f.parse().unwrap()).collect()
        };
        let first = parse(cat(&fs, "dev/time").await);
        sleep_ns(2_000_000).await;
        let second = parse(cat(&fs, "dev/time").await);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        assert!(first[0].abs_diff(now.as_secs()) <= 2, "seconds since the epoch");
        assert_eq!(first[1] / 1_000_000_000, first[0]);
        assert!(second[1] >= first[1] + 2_000_000, "nanoseconds advance");
        assert!(second[2] >= first[2] + 2_000_000, "ticks advance");
        assert_eq!(first[3], 1_000_000_000);
        // A read at an offset reads the rest of the text.
        let time = open(&fs, "dev/time", O_RDONLY).unwrap();
        assert_eq!(fs.read(&time, 70, 100).await.unwrap().len(), 8);
    });
}

/// A connected pair of stream sockets standing in for a terminal: (console end, test end).
fn pipe() -> (OwnedFd, OwnedFd) {
    let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    (a.into(), b.into())
}

#[test]
fn dev_cons_reads_lines_of_input_and_writes_output() {
    let (in_read, in_write) = pipe();
    let (out_read, out_write) = pipe();
    let typist = std::thread::spawn(move || {
        let mut w = std::fs::File::from(in_write);
        w.write_all(b"first line\nsecond ").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        w.write_all(b"line\nlast").unwrap();
        // Dropping the write end is end of input.
    });
    run_on_core(1, move |rt| async move {
        let fs = Synthetic::with_console(rt, Some(in_read), Some(out_write));
        let cons = open(&fs, "dev/cons", O_RDWR).unwrap();
        let mut lines = Vec::new();
        for _ in 0..10 {
            let line = must(5000, "cons read", fs.read(&cons, 0, 1024)).await.unwrap();
            if line.is_empty() {
                break;
            }
            lines.push(String::from_utf8(line.to_vec()).unwrap());
        }
        assert_eq!(lines, ["first line\n", "second line\n", "last"]);
        assert_eq!(fs.write(&cons, 0, b"hello, console\n").await, Ok(15));
    });
    typist.join().unwrap();
    let mut printed = String::new();
    std::fs::File::from(out_read).read_to_string(&mut printed).unwrap();
    assert_eq!(printed, "hello, console\n");
}

#[test]
fn a_blocked_cons_read_dropped_by_flush_loses_no_input() {
    let (in_read, in_write) = pipe();
    let (writer_tx, writer_rx) = std::sync::mpsc::channel::<()>();
    let typist = std::thread::spawn(move || {
        let mut w = std::fs::File::from(in_write);
        // Type only once the first read has been given up.
        writer_rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap();
        w.write_all(b"after the flush\n").unwrap();
    });
    run_on_core(1, move |rt| async move {
        let fs = Synthetic::with_console(rt, Some(in_read), None);
        let cons = open(&fs, "dev/cons", O_RDONLY).unwrap();
        assert!(within(50, fs.read(&cons, 0, 100)).await.is_none(), "nothing typed yet");
        writer_tx.send(()).unwrap();
        let line = must(5000, "cons read", fs.read(&cons, 0, 100)).await.unwrap();
        assert_eq!(line.as_slice(), b"after the flush\n");
        assert!(open(&fs, "dev/cons", O_WRONLY).is_ok());
        let out = open(&fs, "dev/cons", O_WRONLY).unwrap();
        assert!(fs.write(&out, 0, b"x").await.is_err(), "no output descriptor");
    });
    typist.join().unwrap();
}

fn counters(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .map(|l| {
            let (name, value) = l.split_once(' ').expect("name value");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

#[test]
fn stats_show_each_core_and_their_sum_and_change() {
    run_on_core(2, |rt| async move {
        let fs = Synthetic::new(rt);
        let listing: Vec<String> = {
            let dir = open(&fs, "stats", O_RDONLY).unwrap();
            fs.readdir(&dir, 0, 100).unwrap().into_iter().map(|e| e.name).collect()
        };
        assert_eq!(listing, [".", "..", "all", "core0", "core1"]);
        assert_eq!(walk(&fs, "stats/core2").err(), Some(ENOENT));
        assert_eq!(walk(&fs, "stats/core01").err(), Some(ENOENT));

        let before = counters(&cat(&fs, "stats/core0").await);
        let names: Vec<&str> = before.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "events",
                "polls",
                "blocks",
                "wakeups",
                "device_completions",
                "timers_fired",
                "remote_received",
                "tasks_spawned"
            ]
        );
        // Make core 0 work: tasks and timers.
        for _ in 0..20 {
            spawn_local(async {});
            sleep_ns(100_000).await;
        }
        let after = counters(&cat(&fs, "stats/core0").await);
        let value = |c: &[(String, u64)], n: &str| c.iter().find(|(k, _)| k == n).unwrap().1;
        assert!(value(&after, "tasks_spawned") >= value(&before, "tasks_spawned") + 20);
        assert!(value(&after, "timers_fired") >= value(&before, "timers_fired") + 20);
        assert!(value(&after, "events") > value(&before, "events"));

        let all = counters(&cat(&fs, "stats/all").await);
        assert_eq!(all[0], ("cores".to_string(), 2));
        let core1 = counters(&cat(&fs, "stats/core1").await);
        assert!(value(&all, "events") >= value(&after, "events") + value(&core1, "events") / 2);

        // One open fid reads one snapshot, whatever happens between its reads.
        let fid = open(&fs, "stats/core0", O_RDONLY).unwrap();
        let head = fs.read(&fid, 0, 10).await.unwrap();
        for _ in 0..10 {
            spawn_local(async {});
            sleep_ns(100_000).await;
        }
        let tail = fs.read(&fid, 10, 4096).await.unwrap();
        let mut whole = head.to_vec();
        whole.extend_from_slice(&tail);
        let again = fs.read(&fid, 0, 4096).await.unwrap();
        assert_eq!(whole, again.to_vec(), "reads of one open agree");
    });
}

#[test]
fn directories_list_with_stable_cookies_and_walk_up() {
    run_on_core(1, |rt| async move {
        let fs = Synthetic::new(rt);
        let names = |path: &str| -> Vec<String> {
            let dir = open(&fs, path, O_RDONLY).unwrap();
            fs.readdir(&dir, 0, 100).unwrap().into_iter().map(|e| e.name).collect()
        };
        assert_eq!(names(""), [".", "..", "dev", "stats", "net"]);
        assert_eq!(names("dev"), [".", "..", "null", "zero", "random", "time", "cons"]);
        assert_eq!(names("net"), [".", "..", "tcp", "udp"]);
        assert_eq!(names("net/tcp"), [".", "..", "clone"]);

        // Paging with the cookies gives the same listing, one entry at a time.
        let dev = open(&fs, "dev", O_RDONLY).unwrap();
        let mut paged = Vec::new();
        let mut cookie = 0;
        for _ in 0..20 {
            let page = fs.readdir(&dev, cookie, 1).unwrap();
            let Some(entry) = page.into_iter().next() else { break };
            assert!(entry.offset > cookie, "cookies grow");
            cookie = entry.offset;
            paged.push(entry.name);
        }
        assert_eq!(paged, names("dev"));

        // Entries' qids and kinds match what walking finds.
        for entry in fs.readdir(&dev, 2, 100).unwrap() {
            let fid = walk(&fs, &format!("dev/{}", entry.name)).unwrap();
            assert_eq!(fs.qid(&fid), entry.qid);
            assert_eq!(entry.kind, dtype::DT_REG);
        }
        let up = fs.walk(&walk(&fs, "dev").unwrap(), "..").unwrap();
        assert_eq!(fs.qid(&up), fs.qid(&root(&fs)));
        let top = fs.walk(&root(&fs), "..").unwrap();
        assert_eq!(fs.qid(&top), fs.qid(&root(&fs)), ".. of the root is the root");
    });
}

#[test]
fn attributes_and_errors_are_those_of_a_device_tree() {
    run_on_core(1, |rt| async move {
        let fs = Synthetic::new(rt);
        let attr = |path: &str| fs.getattr(&walk(&fs, path).unwrap()).unwrap();
        assert_eq!(attr("dev").mode, libc::S_IFDIR | 0o555);
        assert_eq!(attr("dev/null").mode, libc::S_IFREG | 0o666);
        assert_eq!(attr("dev/zero").mode, libc::S_IFREG | 0o444);
        assert_eq!(attr("stats/all").mode, libc::S_IFREG | 0o444);
        assert_eq!(attr("net/tcp/clone").mode, libc::S_IFREG | 0o666);
        assert_eq!(attr("dev/null").size, 0);
        assert_eq!(attr("dev/null").uid, unsafe { libc::getuid() });
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        assert!(attr("dev/time").atime_sec.abs_diff(now.as_secs()) <= 2);

        let mut paths = HashSet::new();
        for p in ["", "dev", "dev/null", "dev/zero", "dev/random", "dev/time", "dev/cons"] {
            assert!(paths.insert(attr(p).qid.path), "{p} has its own qid path");
        }
        for p in ["stats", "stats/all", "stats/core0", "net", "net/tcp", "net/udp", "net/tcp/clone"]
        {
            assert!(paths.insert(attr(p).qid.path), "{p} has its own qid path");
        }
        assert!(!paths.contains(&0));

        assert_eq!(walk(&fs, "dev/nothing").err(), Some(ENOENT));
        assert_eq!(walk(&fs, "dev/null/x").err(), Some(ENOTDIR));
        assert_eq!(open(&fs, "dev", O_WRONLY).err(), Some(EISDIR));
        assert_eq!(open(&fs, "dev/time", O_RDWR).err(), Some(EACCES));
        assert_eq!(open(&fs, "dev/null", O_RDONLY | 0o200000).err(), Some(ENOTDIR));
        let dir = open(&fs, "dev", O_RDONLY).unwrap();
        assert_eq!(fs.read(&dir, 0, 100).await.err(), Some(EISDIR));
        let file = open(&fs, "dev/null", O_RDONLY).unwrap();
        assert_eq!(fs.readdir(&file, 0, 100).err(), Some(ENOTDIR));
        // A shell's `>` truncates before writing: accepted. Changing owner or mode: refused.
        let trunc = SetAttr { valid: setattr::SIZE, ..SetAttr::default() };
        assert_eq!(fs.setattr(&file, &trunc), Ok(()));
        let chmod = SetAttr { valid: setattr::MODE, mode: 0o777, ..SetAttr::default() };
        assert_eq!(fs.setattr(&file, &chmod), Err(EPERM));
        assert_eq!(fs.remove(walk(&fs, "dev/null").unwrap()), Err(EPERM));
        assert!(fs.statfs(&root(&fs)).is_ok());
    });
}
