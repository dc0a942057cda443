import { defineConfig } from 'vitest/config';

// The suite runs three times: on a SQLite file, on PostgreSQL (own schema per test file) and on
// MariaDB (own database per test file). The browser tests run on SQLite only, and so do the files
// below that use no database.
// Files that never open the test database (configuration, the CLI on a SQLite file of its own,
// templates, checks, passwords, the SMTP catcher): the server projects would only repeat them.
const databaseFree = [
  'test/unit/cli.test.ts',
  'test/unit/config.test.ts',
  'test/unit/checks.test.ts',
  'test/unit/password.test.ts',
  'test/unit/hash-pool.test.ts',
  'test/unit/password-fault.test.ts',
  'test/unit/random.test.ts',
  'test/unit/serializer.test.ts',
  'test/account/password-policy.test.ts',
  'test/mail/templates.test.ts',
  'test/mail/mime.test.ts',
  'test/inbox/catcher.test.ts',
  // SQLite's own synchronous path, on a file of its own.
  'test/db/sqlite-group-commit.test.ts',
  'test/mail/outbox-handoff.test.ts',
];

const shared = {
  testTimeout: 30_000,
  hookTimeout: 30_000,
  pool: 'forks' as const,
};

export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  test: {
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: {
          ...shared,
          name: 'sqlite',
          include: ['test/**/*.test.{ts,tsx}'],
          env: { MAILPROOF_TEST_DB: 'sqlite' },
        },
      },
      {
        extends: true,
        test: {
          ...shared,
          name: 'postgres',
          include: ['test/**/*.test.{ts,tsx}'],
          exclude: ['test/browser/**', ...databaseFree],
          env: { MAILPROOF_TEST_DB: 'postgres' },
        },
      },
      {
        extends: true,
        test: {
          ...shared,
          name: 'mariadb',
          include: ['test/**/*.test.{ts,tsx}'],
          exclude: ['test/browser/**', ...databaseFree],
          env: { MAILPROOF_TEST_DB: 'mariadb' },
        },
      },
    ],
  },
});
