//! A savepoint whose statements are compiled once per connection.
//!
//! rusqlite's `Connection::savepoint` runs `SAVEPOINT`/`RELEASE` through `execute_batch`, which
//! compiles the SQL every time; with an insert that compiled its own SQL too, compiling was a third
//! of the store thread's CPU under load (BENCHMARKS.md, issue 16). The event writers use this and
//! `prepare_cached` instead.

use std::cell::Cell;

use rusqlite::Connection;

use super::StoreError;

thread_local! {
    /// Set while [`all_or_nothing`] runs on this thread.
    static ALL_OR_NOTHING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with [`atomically`] reduced to a plain call, for a caller that undoes the whole
/// transaction if any write in it fails (and then redoes the writes one savepoint each). The
/// savepoints cost two statements per write, and each `RELEASE` makes full-text indexes flush what
/// they hold, so a batch written this way costs markedly less (BENCHMARKS.md, issue 16).
///
/// ```
/// # use verbio::store::savepoint::{all_or_nothing, atomically};
/// let conn = rusqlite::Connection::open_in_memory().unwrap();
/// conn.execute_batch("CREATE TABLE t (x INTEGER NOT NULL); BEGIN").unwrap();
/// let failed = all_or_nothing(|| {
///     atomically(&conn, |c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?)).unwrap();
///     atomically(&conn, |c| Ok(c.execute("INSERT INTO t VALUES (NULL)", [])?)).is_err()
/// });
/// assert!(failed);
/// conn.execute_batch("ROLLBACK").unwrap(); // the caller's part: nothing of the batch stays
/// let rows: i64 = conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
/// assert_eq!(rows, 0);
/// ```
pub fn all_or_nothing<T>(f: impl FnOnce() -> T) -> T {
    /// Clears the flag even if `f` panics.
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            ALL_OR_NOTHING.set(self.0);
        }
    }
    let _reset = Reset(ALL_OR_NOTHING.replace(true));
    f()
}

/// Runs `f` atomically: everything it wrote stays, or (on its error) none of it does. Nests inside
/// a transaction or another savepoint. Inside [`all_or_nothing`] the caller undoes everything on an
/// error, so no savepoint is taken.
///
/// ```
/// # use verbio::store::savepoint::atomically;
/// let conn = rusqlite::Connection::open_in_memory().unwrap();
/// conn.execute_batch("CREATE TABLE t (x INTEGER NOT NULL)").unwrap();
/// let failed = atomically(&conn, |c| {
///     c.execute("INSERT INTO t VALUES (1)", [])?;
///     c.execute("INSERT INTO t VALUES (NULL)", [])?; // refused: the first row goes too
///     Ok(())
/// });
/// assert!(failed.is_err());
/// let rows: i64 = conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
/// assert_eq!(rows, 0);
/// ```
pub fn atomically<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    if ALL_OR_NOTHING.get() {
        return f(conn);
    }
    conn.prepare_cached("SAVEPOINT verbio_event")?.execute([])?;
    let result = f(conn).and_then(|value| {
        conn.prepare_cached("RELEASE verbio_event")?.execute([])?;
        Ok(value)
    });
    if result.is_err() {
        // Undo and drop the savepoint; if even that fails the connection reports it on next use.
        let _ = conn.execute_batch("ROLLBACK TO verbio_event; RELEASE verbio_event");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER NOT NULL)")
            .unwrap();
        conn
    }

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn keeps_what_succeeded_inside_an_outer_transaction() {
        let conn = table();
        conn.execute_batch("BEGIN").unwrap();
        atomically(&conn, |c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?)).unwrap();
        let bad = atomically(&conn, |c| {
            c.execute("INSERT INTO t VALUES (2)", [])?;
            Ok(c.execute("INSERT INTO t VALUES (NULL)", [])?)
        });
        assert!(bad.is_err());
        atomically(&conn, |c| Ok(c.execute("INSERT INTO t VALUES (3)", [])?)).unwrap();
        conn.execute_batch("COMMIT").unwrap();
        let xs: Vec<i64> = conn
            .prepare("SELECT x FROM t ORDER BY x")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(xs, vec![1, 3]);
    }

    #[test]
    fn commits_on_its_own_outside_a_transaction() {
        let conn = table();
        for _ in 0..3 {
            atomically(&conn, |c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?)).unwrap();
        }
        assert!(conn.is_autocommit(), "no savepoint left open");
        assert_eq!(count(&conn), 3);
    }
}
