// SQLite's synchronous hot path (Db.sqlite): works asked for in one turn of the event loop share
// one commit, and one that throws is undone alone; none interleaves with a Kysely transaction; a
// failed commit fails the whole group. Runs on a SQLite file of its own, whatever the project.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../src/db/index.ts';

let dir: string;
let db: Db;
let file: string;

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'mp-group-'));
  file = path.join(dir, 'g.db');
  db = openDatabase(`sqlite:${file}`);
  await sql`create table t (id integer primary key, v text not null)`.execute(db.kysely);
});
afterEach(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

function sqlite(): NonNullable<Db['sqlite']> {
  if (!db.sqlite) throw new Error('a SQLite Db has a synchronous path');
  return db.sqlite;
}

function insert(id: number, v: string) {
  return sqlite().transaction(
    (run) => run.prepare('insert into t (id, v) values (?, ?)').run(id, v).changes,
  );
}

async function rows(): Promise<Array<{ id: number; v: string }>> {
  const result = await sql<{ id: number; v: string }>`select id, v from t order by id`.execute(
    db.kysely,
  );
  return result.rows;
}

describe('Db.sqlite.transaction', () => {
  it('is offered on SQLite only', () => {
    expect(db.dialect).toBe('sqlite');
    expect(db.sqlite).toBeDefined();
  });

  it('commits works asked for together in one transaction, and answers each', async () => {
    const watcher = new SQLite(file, { readonly: true });
    const visibleToOthers = () => watcher.prepare('select count(*) from t').pluck().get() as number;
    const seenInside: number[] = [];
    const answers = await Promise.all([
      insert(1, 'v1'),
      insert(2, 'v2'),
      // The third work of the group: the first two are written but not yet committed.
      sqlite().transaction((run) => {
        seenInside.push(run.prepare('select count(*) from t').pluck().get() as number);
        seenInside.push(visibleToOthers());
        return run.prepare('insert into t (id, v) values (?, ?)').run(3, 'v3').changes;
      }),
    ]);
    expect(answers).toEqual([1, 1, 1]);
    expect(seenInside).toEqual([2, 0]);
    expect(visibleToOthers()).toBe(3);
    watcher.close();
    expect((await rows()).map((r) => r.id)).toEqual([1, 2, 3]);
  });

  it('starts a new group for works asked for after the previous group was flushed', async () => {
    expect(await insert(1, 'first')).toBe(1);
    const watcher = new SQLite(file, { readonly: true });
    const seen = await sqlite().transaction(
      () => watcher.prepare('select count(*) from t').pluck().get() as number,
    );
    watcher.close();
    expect(seen).toBe(1); // the first insert was committed on its own, before this group
  });

  it('rolls back only the work that throws; the rest of its group commits', async () => {
    await insert(10, 'existing');
    const outcomes = await Promise.allSettled([
      insert(11, 'a'),
      sqlite().transaction((run) => {
        run.prepare('insert into t (id, v) values (?, ?)').run(12, 'b');
        throw new Error('changed my mind');
      }),
      insert(10, 'duplicate key'),
      insert(13, 'c'),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual([
      'fulfilled',
      'rejected',
      'rejected',
      'fulfilled',
    ]);
    expect((outcomes[1] as PromiseRejectedResult).reason.message).toBe('changed my mind');
    expect((outcomes[2] as PromiseRejectedResult).reason.code).toBe('SQLITE_CONSTRAINT_PRIMARYKEY');
    expect(await rows()).toEqual([
      { id: 10, v: 'existing' },
      { id: 11, v: 'a' },
      { id: 13, v: 'c' },
    ]);
  });

  it('undoes everything a lone work wrote before it threw', async () => {
    const outcome = sqlite().transaction((run) => {
      run.prepare('insert into t (id, v) values (?, ?)').run(30, 'half done');
      throw new Error('stopped half way');
    });
    await expect(outcome).rejects.toThrow('stopped half way');
    expect(await rows()).toEqual([]);
    expect(await insert(31, 'next')).toBe(1);
    expect(await rows()).toEqual([{ id: 31, v: 'next' }]);
  });

  it('runs the rest of a group again, once each, after one of its works threw', async () => {
    const runs: string[] = [];
    const work = (id: number, fail: boolean) =>
      sqlite().transaction((run) => {
        runs.push(`${id}`);
        run.prepare('insert into t (id, v) values (?, ?)').run(id, 'x');
        if (fail) throw new Error(`work ${id} failed`);
        return id;
      });
    const outcomes = await Promise.allSettled([work(41, false), work(42, true), work(43, false)]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    // First without savepoints (41, then 42 throws and all is undone), then each in its own.
    expect(runs).toEqual(['41', '42', '41', '42', '43']);
    expect((await rows()).map((r) => r.id)).toEqual([41, 43]);
  });

  it('waits for a Kysely transaction in progress instead of running inside it', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const kyselyTx = db.kysely.transaction().execute(async (trx) => {
      await sql`insert into t (id, v) values (1, 'kysely')`.execute(trx);
      await held;
      throw new Error('roll back');
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const fast = insert(2, 'fast');
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    await expect(kyselyTx).rejects.toThrow('roll back');
    expect(await fast).toBe(1);
    // Had the fast insert run inside the Kysely transaction, the rollback would have taken it.
    expect(await rows()).toEqual([{ id: 2, v: 'fast' }]);
  });

  it('fails every work of a group whose commit cannot start, and writes none', async () => {
    // Another connection holds the write lock longer than busy_timeout allows.
    const other = new SQLite(file);
    other.pragma('busy_timeout = 0');
    other.prepare('begin immediate').run();
    const ours = openDatabase(`sqlite:${file}`);
    try {
      await sql`pragma busy_timeout = 50`.execute(ours.kysely);
      const group = await Promise.allSettled(
        [21, 22].map((id) =>
          ours.sqlite?.transaction((run) =>
            run.prepare('insert into t (id, v) values (?, ?)').run(id, 'x'),
          ),
        ),
      );
      expect(group.map((o) => o.status)).toEqual(['rejected', 'rejected']);
      expect((group[0] as PromiseRejectedResult).reason.code).toBe('SQLITE_BUSY');
    } finally {
      other.prepare('rollback').run();
      other.close();
      await ours.close();
    }
    expect(await rows()).toEqual([]);
  });
});
