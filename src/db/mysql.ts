// MySQL and MariaDB: the connection settings, and the table options every migration gets there.
import {
  type ColumnDefinitionNode,
  ColumnNode,
  CompiledQuery,
  CreateTableNode,
  ForeignKeyConstraintNode,
  Kysely,
  type KyselyPlugin,
  MysqlDialect,
  RawNode,
} from 'kysely';
import mysql from 'mysql2';
import type { Database } from './schema.ts';

/**
 * One mysql2 pool. BIGINT columns (millisecond times, counts) and sums come back as numbers;
 * strings travel as utf8mb4. Transactions run at READ COMMITTED, as PostgreSQL's do: each statement sees
 * what others committed before it (the SELECT after a lost race for a unique key finds the
 * winner's row), and InnoDB takes no gap locks for ordinary reads and updates.
 */
export function openMysqlKysely(databaseUrl: string): Kysely<Database> {
  return openMysql(databaseUrl).kysely;
}

/** The Kysely instance, and its pool and database name for the rate-limit counters. */
export function openMysql(databaseUrl: string): {
  kysely: Kysely<Database>;
  pool: mysql.Pool;
  database: string;
} {
  const pool = mysql.createPool({
    uri: databaseUrl.replace(/^mariadb:/, 'mysql:'),
    connectionLimit: 10,
    charset: 'utf8mb4_bin',
    // BIGINT as a number while it is exact (every millisecond time is); past 2^53 as a string.
    supportBigNumbers: true,
    bigNumberStrings: false,
    // SUM() of integers is DECIMAL in MySQL: a number, as PostgreSQL's sums are here.
    decimalNumbers: true,
  });
  // An idle connection losing the server (a restart) must not crash the process; the pool drops it.
  pool.on('connection', (connection) => connection.on('error', () => {}));
  const database = decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, '')) || 'mysql';
  const kysely = new Kysely<Database>({
    dialect: new MysqlDialect({
      pool,
      async onCreateConnection(connection) {
        await connection.executeQuery(
          CompiledQuery.raw('set session transaction isolation level read committed'),
        );
      },
    }),
  });
  return { kysely, pool, database };
}

/**
 * The migrations are written once for every database; on MySQL each CREATE TABLE also gets:
 * - InnoDB (row locks, transactions, foreign keys) whatever the server's default engine;
 * - utf8mb4 with the binary collation, so text compares byte for byte as on PostgreSQL and SQLite
 *   (a case- or accent-insensitive default would make `a@x.com` and `á@x.com` one unique key);
 * - foreign keys as table constraints: MySQL 8.0 parses a REFERENCES on a column and ignores it.
 */
export const mysqlTableOptions: KyselyPlugin = {
  transformQuery({ node }) {
    if (!CreateTableNode.is(node)) return node;
    const tableName = node.table.table.identifier.name;
    const foreignKeys = node.columns.flatMap((column) => foreignKeyOf(tableName, column));
    const table: CreateTableNode = {
      ...node,
      columns: node.columns.map(({ references: _, ...column }) => column),
      constraints: [...(node.constraints ?? []), ...foreignKeys],
    };
    return CreateTableNode.cloneWithEndModifier(
      table,
      RawNode.createWithSql('engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin'),
    );
  },
  async transformResult({ result }) {
    return result;
  },
};

function foreignKeyOf(tableName: string, column: ColumnDefinitionNode): ForeignKeyConstraintNode[] {
  const { references } = column;
  if (!references) return [];
  const name = column.column.column.name;
  const constraint = ForeignKeyConstraintNode.create(
    [ColumnNode.create(name)],
    references.table,
    references.columns,
    `${tableName}_${name}_fkey`,
  );
  return [
    ForeignKeyConstraintNode.cloneWith(constraint, {
      onDelete: references.onDelete,
      onUpdate: references.onUpdate,
    }),
  ];
}
