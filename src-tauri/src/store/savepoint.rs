//! A savepoint whose statements are compiled once per connection.
//!
//! rusqlite's `Connection::savepoint` runs `SAVEPOINT`/`RELEASE` through `execute_batch`, which
//! compiles the SQL every time; with an insert that compiled its own SQL too, compiling was a third
//! of the store thread's CPU under load (BENCHMARKS.md, issue 16). The event writers use this and
//! `prepare_cached` instead.

use rusqlite::Connection;

use super::StoreError;

/// Runs `f` atomically: everything it wrote stays, or (on its error) none of it does. Nests inside
/// a transaction or another savepoint.
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
