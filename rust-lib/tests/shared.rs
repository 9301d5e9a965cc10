//! One database shared by threads through `cairndb::shared`: exact totals under contention,
//! atomic visibility to concurrent readers, lock timeouts, refusal of re-entrant calls, and
//! detached transactions (isolation, Busy for other owners, stale detection and automatic
//! abort, abort and drop discarding, the size bound).
#![cfg(feature = "std")]

mod common;
use cairndb::db::{Config, Database, Key};
use cairndb::flash::SimFlash;
use cairndb::shared::{NoLock, RawLock, Shared, SharedConfig, StdLock, TxnInfo};
use cairndb::value::Value;
use cairndb::Error;
use common::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

type Db = Database<SimFlash>;

fn fresh() -> Db {
    Database::format(new_sim(128), &Config::default(), &Key::None)
        .map_err(|e| e.0)
        .expect("format")
}

fn cfg(timeout_ms: u32) -> SharedConfig {
    SharedConfig {
        timeout_ms,
        ..SharedConfig::default()
    }
}

fn inc(field: &str, by: i64) -> Value {
    json(&format!(r#"{{"$inc":{{"{field}":{by}}}}}"#))
}

fn int(doc: &Value, field: &str) -> i64 {
    doc.as_map()
        .and_then(|m| m.get(field))
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("{field} missing in {doc:?}"))
}

fn kv_u64(v: Option<Vec<u8>>) -> u64 {
    v.map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

#[test]
fn the_handle_is_sync_and_send() {
    fn sync_send<T: Sync + Send>() {}
    fn send<T: Send>() {}
    sync_send::<Shared<SimFlash, StdLock>>();
    send::<Shared<SimFlash, NoLock>>();
    send::<Db>();
}

/// N threads x M transactions, each patching two documents with `$inc` and bumping a KV
/// counter read-modify-write; a reader checks on the way that the counter and the document
/// every transaction touches always agree (no transaction is seen half done).
#[test]
fn concurrent_transactions_give_exact_totals() {
    const N: u64 = 4;
    const M: u64 = 25;
    let mut db = fresh();
    for _ in 0..3 {
        db.insert("c", &json(r#"{"n":0}"#)).unwrap();
    }
    let shared = Shared::new(db, StdLock::new(), cfg(60_000));
    let done = AtomicU64::new(0);
    thread::scope(|s| {
        for t in 0..N {
            let shared = &shared;
            let done = &done;
            s.spawn(move || {
                for i in 0..M {
                    shared
                        .transaction(|txn| {
                            txn.patch("c", 1, &inc("n", 1))?;
                            txn.patch("c", 2 + (t + i) % 2, &inc("n", 1))?;
                            let n = kv_u64(txn.kv_get("k", b"count")?);
                            txn.kv_put("k", b"count", &(n + 1).to_le_bytes())
                        })
                        .expect("transaction");
                }
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        let shared = &shared;
        let done = &done;
        s.spawn(move || {
            let mut looks = 0;
            while done.load(Ordering::SeqCst) < N || looks == 0 {
                let (count, n1) = shared
                    .read(|r| {
                        let count = kv_u64(r.kv_get("k", b"count")?);
                        let d = r.get("c", 1)?.expect("doc 1");
                        Ok((count, int(&d, "n")))
                    })
                    .expect("read");
                assert_eq!(count as i64, n1, "a reader saw a transaction half done");
                looks += 1;
            }
        });
    });
    let mut db = shared.into_inner();
    let total = (N * M) as i64;
    let d1 = db.get("c", 1).unwrap().unwrap();
    let d2 = db.get("c", 2).unwrap().unwrap();
    let d3 = db.get("c", 3).unwrap().unwrap();
    assert_eq!(int(&d1, "n"), total);
    assert_eq!(int(&d2, "n") + int(&d3, "n"), total);
    assert_eq!(int(&d2, "n"), total / 2);
    assert_eq!(int(&d1, "_ver"), 1 + total);
    assert_eq!(kv_u64(db.kv_get("k", b"count").unwrap()), N * M);
    // And durably so.
    let (r, dev) = db.close();
    r.unwrap();
    let mut db = Database::open(dev, &Config::default(), &Key::None)
        .map_err(|e| e.0)
        .unwrap();
    assert_eq!(int(&db.get("c", 1).unwrap().unwrap(), "n"), total);
    assert_eq!(kv_u64(db.kv_get("k", b"count").unwrap()), N * M);
}

/// One thread holds the lock inside a closure blocked on a channel: another call times out
/// within its bound, a call with a long timeout gets through once the holder lets go.
#[test]
fn lock_timeouts_are_bounded_and_clear_on_release() {
    let shared = Shared::new(fresh(), StdLock::new(), cfg(60_000));
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    thread::scope(|s| {
        let sh = &shared;
        let holder = s.spawn(move || {
            sh.with(|db| {
                db.insert("c", &json(r#"{"by":"holder"}"#))?;
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok(())
            })
        });
        held_rx.recv().unwrap();

        // Try once: at once.
        let t0 = Instant::now();
        assert_eq!(shared.within(0).read(|r| r.count("c")), Err(Error::Timeout));
        assert!(t0.elapsed() < Duration::from_secs(2));
        // Bounded wait, every kind of call.
        for timeout in [60u32, 120] {
            let t0 = Instant::now();
            let r = shared.within(timeout).read(|r| r.count("c"));
            let waited = t0.elapsed();
            assert_eq!(r, Err(Error::Timeout));
            assert!(
                waited >= Duration::from_millis(u64::from(timeout)),
                "{waited:?}"
            );
            assert!(waited < Duration::from_secs(10), "{waited:?}");
        }
        let w = shared.within(50);
        assert_eq!(w.transaction(|t| t.count("c")), Err(Error::Timeout));
        assert_eq!(w.with(|db| db.count("c")), Err(Error::Timeout));
        assert_eq!(w.begin(7).err(), Some(Error::Timeout));
        assert_eq!(w.open_transaction(), Err(Error::Timeout));

        // A waiter with a long timeout gets through once the holder lets go.
        let waiter = s.spawn(move || {
            sh.within(60_000)
                .transaction(|t| t.insert("c", &json(r#"{"by":"waiter"}"#)))
        });
        thread::sleep(Duration::from_millis(30));
        release_tx.send(()).unwrap();
        holder.join().unwrap().expect("holder");
        assert_eq!(waiter.join().unwrap(), Ok(2));
    });
    let n = shared.within(1_000).read(|r| r.count("c")).unwrap();
    assert_eq!(n, 2);
}

/// A recursive mutex for the re-entrance test (FreeRTOS recursive mutexes and Zephyr's
/// k_mutex behave so).
struct RecursiveLock {
    state: Arc<Mutex<(Option<ThreadId>, u32)>>,
    cv: Condvar,
}

unsafe impl RawLock for RecursiveLock {
    fn lock(&self, timeout_ms: u32) -> bool {
        let me = thread::current().id();
        let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
        let mut g = self.state.lock().unwrap();
        loop {
            match g.0 {
                None => {
                    *g = (Some(me), 1);
                    return true;
                }
                Some(o) if o == me => {
                    g.1 += 1;
                    return true;
                }
                Some(_) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    g = self.cv.wait_timeout(g, deadline - now).unwrap().0;
                }
            }
        }
    }

    fn unlock(&self) {
        let mut g = self.state.lock().unwrap();
        g.1 -= 1;
        if g.1 == 0 {
            g.0 = None;
        }
        self.cv.notify_all();
    }
}

/// A closure calling back into its own handle never gets a second database reference and
/// never deadlocks: Busy with a recursive lock or NoLock, Timeout with a plain one.
#[test]
fn reentrant_calls_are_refused() {
    let state = Arc::new(Mutex::new((None, 0)));
    let rec = Shared::new(
        fresh(),
        RecursiveLock {
            state: state.clone(),
            cv: Condvar::new(),
        },
        cfg(60_000),
    );
    let inner = rec
        .with(|db| {
            db.insert("c", &json("{}"))?;
            let nested = rec.read(|r| r.count("c"));
            let nested_txn = rec.transaction(|t| t.count("c"));
            db.insert("c", &json("{}"))?;
            Ok((nested, nested_txn))
        })
        .unwrap();
    assert_eq!(inner, (Err(Error::Busy), Err(Error::Busy)));
    // The lock was given back as often as taken.
    assert_eq!(*state.lock().unwrap(), (None, 0));
    assert_eq!(rec.within(0).read(|r| r.count("c")), Ok(2));

    let one = Shared::new(fresh(), NoLock::new(), cfg(60_000));
    let nested = one.with(|_| Ok(one.read(|r| r.count("c")))).unwrap();
    assert_eq!(nested, Err(Error::Busy));
    assert_eq!(one.read(|r| r.count("c")), Ok(0));

    let plain = Shared::new(fresh(), StdLock::new(), cfg(60_000));
    let t0 = Instant::now();
    let nested = plain
        .with(|_| Ok(plain.within(40).read(|r| r.count("c"))))
        .unwrap();
    assert_eq!(nested, Err(Error::Timeout));
    assert!(t0.elapsed() >= Duration::from_millis(40));
    assert_eq!(plain.within(0).read(|r| r.count("c")), Ok(0));
}

fn doc_n(shared: &Shared<SimFlash, StdLock>, id: u64) -> Option<i64> {
    shared
        .read(|r| Ok(r.get("c", id)?.map(|d| int(&d, "n"))))
        .unwrap()
}

/// A detached transaction: its reads see its writes, outside reads do not; other owners'
/// begins and writes wait their timeout then get Busy; the owner's own second begin is Busy
/// at once; a writer waiting when it commits gets through after it.
#[test]
fn detached_transactions_are_isolated_and_exclusive() {
    let mut db = fresh();
    db.insert("c", &json(r#"{"n":10}"#)).unwrap();
    db.kv_put("k", b"a", b"old").unwrap();
    let shared = Shared::new(db, StdLock::new(), cfg(60_000));

    let mut tok = shared.begin(1).unwrap();
    assert_eq!(tok.owner(), 1);
    let new_id = shared
        .in_txn(&tok, |t| {
            t.patch("c", 1, &inc("n", 5))?;
            t.kv_put("k", b"a", b"new")?;
            t.kv_put("k2", b"b", b"fresh")?;
            t.insert("d", &json(r#"{"n":1}"#))
        })
        .unwrap();
    // A later call of the same transaction sees the earlier one's writes.
    let seen = shared
        .in_txn(&tok, |t| {
            Ok((
                int(&t.get("c", 1)?.unwrap(), "n"),
                t.kv_get("k", b"a")?,
                t.kv_get("k2", b"b")?,
                t.count("d")?,
            ))
        })
        .unwrap();
    assert_eq!(
        seen,
        (15, Some(b"new".to_vec()), Some(b"fresh".to_vec()), 1)
    );
    // Outside: the committed state only.
    let outside = shared
        .read(|r| {
            Ok((
                r.kv_get("k", b"a")?,
                r.kv_get("k2", b"b")?,
                r.count("d")?,
                r.collections()?,
                r.namespaces()?,
            ))
        })
        .unwrap();
    assert_eq!(
        outside,
        (
            Some(b"old".to_vec()),
            None,
            0,
            vec!["c".to_string()],
            vec!["k".to_string()]
        )
    );
    assert_eq!(doc_n(&shared, 1), Some(10));
    let info = shared.open_transaction().unwrap().unwrap();
    assert_eq!(info.owner, 1);
    assert!(info.writes >= 5 && info.bytes > 0, "{info:?}");

    // Another owner: waits its timeout, then Busy; every kind of write.
    for timeout in [40u32, 80] {
        let t0 = Instant::now();
        assert_eq!(shared.within(timeout).begin(2).err(), Some(Error::Busy));
        let waited = t0.elapsed();
        assert!(
            waited >= Duration::from_millis(u64::from(timeout)),
            "{waited:?}"
        );
        assert!(waited < Duration::from_secs(10), "{waited:?}");
    }
    let w = shared.within(30);
    assert_eq!(
        w.transaction(|t| t.kv_put("k", b"a", b"other")),
        Err(Error::Busy)
    );
    assert_eq!(w.with(|db| db.flush()), Err(Error::Busy));
    assert_eq!(w.begin(2).err(), Some(Error::Busy));
    // The owner's own second begin: Busy without waiting out the 60 s timeout.
    let t0 = Instant::now();
    assert_eq!(shared.begin(1).err(), Some(Error::Busy));
    assert!(t0.elapsed() < Duration::from_secs(5));
    // A token from another handle is refused.
    let other = Shared::new(fresh(), StdLock::new(), cfg(1_000));
    assert_eq!(
        other.in_txn(&tok, |t| t.count("c")),
        Err(Error::InvalidArgument)
    );
    assert_eq!(other.commit(&mut tok), Err(Error::InvalidArgument));
    assert!(!tok.is_spent());

    // A writer that starts waiting now gets in once the transaction commits, after it.
    thread::scope(|s| {
        let sh = &shared;
        let waiter = s.spawn(move || {
            sh.within(60_000)
                .transaction(|t| t.insert("d", &json(r#"{"n":2}"#)))
        });
        thread::sleep(Duration::from_millis(50));
        shared.commit(&mut tok).unwrap();
        assert_eq!(waiter.join().unwrap(), Ok(new_id + 1));
    });
    assert!(tok.is_spent());
    assert_eq!(shared.in_txn(&tok, |t| t.count("c")), Err(Error::NotFound));
    assert_eq!(shared.commit(&mut tok), Err(Error::NotFound));
    drop(tok);
    assert_eq!(shared.open_transaction().unwrap(), None);
    assert_eq!(doc_n(&shared, 1), Some(15));
    let after = shared
        .read(|r| Ok((r.kv_get("k", b"a")?, r.kv_get("k2", b"b")?, r.count("d")?)))
        .unwrap();
    assert_eq!(after, (Some(b"new".to_vec()), Some(b"fresh".to_vec()), 2));
    // Writers are free again.
    let mut tok2 = shared.within(0).begin(2).unwrap();
    shared.commit(&mut tok2).unwrap();
}

/// With a single-task lock, waiting for another owner cannot help: Busy at once.
#[test]
fn a_single_task_handle_does_not_wait_for_itself() {
    let shared = Shared::new(fresh(), NoLock::new(), cfg(60_000));
    let tok = shared.begin(1).unwrap();
    let t0 = Instant::now();
    assert_eq!(shared.begin(2).err(), Some(Error::Busy));
    assert_eq!(shared.transaction(|t| t.count("c")), Err(Error::Busy));
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(shared.read(|r| r.count("c")), Ok(0));
    shared.in_txn(&tok, |t| t.insert("c", &json("{}"))).unwrap();
    drop(tok);
    assert_eq!(shared.read(|r| r.count("c")), Ok(0));
    let mut db = shared.into_inner();
    assert_eq!(db.count("c").unwrap(), 0);
}

/// Stale detection on the database clock: the age is reported, a transaction at or under the
/// limit keeps other owners out, past it another owner's begin (or any writer) aborts it
/// (counted), and its token then finds it gone; `abort_stale` does the same on demand.
#[test]
fn stale_transactions_are_detected_and_aborted() {
    let clock = Arc::new(AtomicU64::new(1_000));
    let mut db = fresh();
    let c = clock.clone();
    db.set_clock(Box::new(move || c.load(Ordering::SeqCst)));
    db.insert("c", &json(r#"{"n":0}"#)).unwrap();
    let shared = Shared::new(
        db,
        StdLock::new(),
        SharedConfig {
            timeout_ms: 60_000,
            stale_after: Some(100),
            poll_ms: 5,
        },
    );
    let set = |t: u64| clock.store(t, Ordering::SeqCst);

    let mut t1 = shared.begin(1).unwrap();
    shared
        .in_txn(&t1, |t| {
            t.patch("c", 1, &inc("n", 1))?;
            t.kv_put("k", b"one", b"1")
        })
        .unwrap();
    set(1_050);
    let info = shared.open_transaction().unwrap().unwrap();
    assert_eq!(
        (info.owner, info.started, info.age),
        (1, 1_000, 50),
        "{info:?}"
    );
    assert_eq!(shared.abort_stale().unwrap(), None);
    set(1_100);
    assert_eq!(shared.abort_stale().unwrap(), None, "exactly the limit");
    assert_eq!(shared.within(30).begin(2).err(), Some(Error::Busy));
    assert_eq!(shared.stale_aborts().unwrap(), 0);

    // Past the limit: another owner's begin aborts it.
    set(1_101);
    let mut t2 = shared.within(0).begin(2).unwrap();
    assert_eq!(shared.stale_aborts().unwrap(), 1);
    let info = shared.open_transaction().unwrap().unwrap();
    assert_eq!((info.owner, info.started, info.writes), (2, 1_101, 0));
    // The stale owner comes back: its transaction is gone, none of it happened.
    assert_eq!(shared.in_txn(&t1, |t| t.count("c")), Err(Error::NotFound));
    assert_eq!(shared.commit(&mut t1), Err(Error::NotFound));
    assert!(t1.is_spent());
    assert_eq!(doc_n(&shared, 1), Some(0));
    assert_eq!(shared.read(|r| r.kv_get("k", b"one")).unwrap(), None);
    // The new owner's transaction is unaffected by the old token going away.
    drop(t1);
    shared
        .in_txn(&t2, |t| t.patch("c", 1, &inc("n", 2)))
        .unwrap();
    shared.commit(&mut t2).unwrap();
    assert_eq!(doc_n(&shared, 1), Some(2));

    // abort_stale on demand.
    let t3 = shared.begin(3).unwrap();
    shared
        .in_txn(&t3, |t| t.kv_put("k", b"three", b"3"))
        .unwrap();
    set(1_500);
    let gone: TxnInfo = shared.abort_stale().unwrap().expect("stale");
    assert_eq!((gone.owner, gone.started, gone.age), (3, 1_101, 399));
    assert_eq!(shared.open_transaction().unwrap(), None);
    assert_eq!(shared.stale_aborts().unwrap(), 2);
    drop(t3); // finds it gone: nothing happens
    assert_eq!(shared.read(|r| r.kv_get("k", b"three")).unwrap(), None);

    // A plain writer also removes a stale transaction instead of waiting for it.
    let t4 = shared.begin(4).unwrap();
    set(1_700);
    shared
        .within(0)
        .transaction(|t| t.patch("c", 1, &inc("n", 10)))
        .unwrap();
    assert_eq!(shared.stale_aborts().unwrap(), 3);
    assert_eq!(shared.in_txn(&t4, |t| t.count("c")), Err(Error::NotFound));
    assert_eq!(doc_n(&shared, 1), Some(12));
}

/// Abort and drop discard; a failing call leaves the transaction as before it; the size bound
/// is TxnTooLarge with the transaction still usable.
#[test]
fn abort_drop_failure_and_the_size_bound() {
    let mut db = fresh();
    db.insert("c", &json(r#"{"n":0}"#)).unwrap();
    let shared = Shared::new(db, StdLock::new(), cfg(60_000));

    // Abort.
    let mut t = shared.begin(1).unwrap();
    shared
        .in_txn(&t, |x| x.patch("c", 1, &inc("n", 1)))
        .unwrap();
    assert_eq!(shared.abort(&mut t), Ok(true));
    assert!(t.is_spent());
    assert_eq!(shared.abort(&mut t), Err(Error::NotFound));
    assert_eq!(shared.open_transaction().unwrap(), None);
    assert_eq!(doc_n(&shared, 1), Some(0));

    // Drop.
    let t = shared.begin(1).unwrap();
    shared.in_txn(&t, |x| x.insert("c", &json("{}"))).unwrap();
    drop(t);
    assert_eq!(shared.open_transaction().unwrap(), None);
    assert_eq!(shared.read(|r| r.count("c")).unwrap(), 1);

    // A failing call: its writes are not kept, the earlier ones are.
    let mut t = shared.begin(1).unwrap();
    shared
        .in_txn(&t, |x| x.patch("c", 1, &inc("n", 1)))
        .unwrap();
    let before = shared.open_transaction().unwrap().unwrap();
    let r: Result<(), Error> = shared.in_txn(&t, |x| {
        x.patch("c", 1, &inc("n", 100))?;
        x.kv_put("k", b"x", b"y")?;
        Err(Error::InvalidArgument)
    });
    assert_eq!(r, Err(Error::InvalidArgument));
    let same = shared.open_transaction().unwrap().unwrap();
    assert_eq!((same.writes, same.bytes), (before.writes, before.bytes));
    assert_eq!(
        shared
            .in_txn(&t, |x| Ok((
                int(&x.get("c", 1)?.unwrap(), "n"),
                x.kv_get("k", b"x")?
            )))
            .unwrap(),
        (1, None)
    );

    // The size bound: fill until TxnTooLarge.
    let big = vec![0x5A; 200];
    let mut puts = 0u32;
    let err = loop {
        let r = shared.in_txn(&t, |x| {
            x.kv_put("big", format!("k{puts:03}").as_bytes(), &big)
        });
        match r {
            Ok(()) => puts += 1,
            Err(e) => break e,
        }
        assert!(puts < 1_000, "no size bound");
    };
    assert_eq!(err, Error::TxnTooLarge);
    assert!(puts >= 2, "only {puts} puts fit");
    let full = shared.open_transaction().unwrap().unwrap();
    // A call that fails half way through keeps none of its writes.
    let r = shared.in_txn(&t, |x| {
        x.kv_put("k", b"small", b"s")?;
        x.kv_put("big", b"over", &big)
    });
    assert_eq!(r, Err(Error::TxnTooLarge));
    let still = shared.open_transaction().unwrap().unwrap();
    assert_eq!((still.writes, still.bytes), (full.writes, full.bytes));
    // Still usable: a small write fits and the whole transaction commits.
    shared
        .in_txn(&t, |x| x.kv_put("k", b"small", b"s"))
        .unwrap();
    shared.commit(&mut t).unwrap();
    let (keys, small, n) = shared
        .read(|r| {
            let mut keys = 0u32;
            r.kv_keys("big", b"", &mut |_| {
                keys += 1;
                Ok(true)
            })?;
            Ok((
                keys,
                r.kv_get("k", b"small")?,
                int(&r.get("c", 1)?.unwrap(), "n"),
            ))
        })
        .unwrap();
    assert_eq!((keys, small, n), (puts, Some(b"s".to_vec()), 1));
    assert_eq!(shared.read(|r| r.kv_get("k", b"x")).unwrap(), None);
}

/// Catalog changes inside a detached transaction (a new collection, a new index, a dropped
/// collection) stay invisible outside until commit, and the database's caches do not keep
/// them after an abort.
#[test]
fn catalog_changes_in_a_detached_transaction() {
    let mut db = fresh();
    db.insert("old", &json(r#"{"n":1}"#)).unwrap();
    db.insert("keep", &json(r#"{"n":2}"#)).unwrap();
    let shared = Shared::new(db, StdLock::new(), cfg(60_000));
    // Warm the caches with the committed catalog.
    assert_eq!(shared.read(|r| r.count("old")).unwrap(), 1);

    let mut t = shared.begin(1).unwrap();
    shared
        .in_txn(&t, |x| {
            x.drop_collection("old")?;
            x.create_collection("new")?;
            x.insert("new", &json(r#"{"n":3}"#))?;
            x.insert("keep", &json(r#"{"n":4}"#))
        })
        .unwrap();
    let inside = shared
        .in_txn(&t, |x| {
            Ok((x.count("old")?, x.count("new")?, x.count("keep")?))
        })
        .unwrap();
    assert_eq!(inside, (0, 1, 2));
    let outside = shared
        .read(|r| Ok((r.count("old")?, r.count("new")?, r.collections()?)))
        .unwrap();
    assert_eq!(outside, (1, 0, vec!["keep".to_string(), "old".to_string()]));
    assert_eq!(shared.abort(&mut t), Ok(true));
    let after = shared
        .read(|r| Ok((r.count("old")?, r.count("new")?, r.count("keep")?)))
        .unwrap();
    assert_eq!(after, (1, 0, 1));

    // The same, committed.
    let mut t = shared.begin(1).unwrap();
    shared
        .in_txn(&t, |x| {
            x.drop_collection("old")?;
            x.insert("new", &json(r#"{"n":3}"#))
        })
        .unwrap();
    assert_eq!(shared.read(|r| r.count("old")).unwrap(), 1);
    shared.commit(&mut t).unwrap();
    let after = shared
        .read(|r| Ok((r.count("old")?, r.count("new")?, r.collections()?)))
        .unwrap();
    assert_eq!(after, (0, 1, vec!["keep".to_string(), "new".to_string()]));
}
