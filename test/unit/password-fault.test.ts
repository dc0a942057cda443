// A fault in password hashing is an error, never a wrong password (decision 018). In a file of
// its own: it closes the process's shared hash pool.
import { expect, it } from 'vitest';
import { hashPassword, hashPool, verifyPassword } from '../../src/accounts/password.ts';

it('rejects a check the hash threads cannot answer, instead of answering false', async () => {
  const stored = await hashPassword('correct horse battery staple');
  await hashPool.close();
  await expect(verifyPassword(stored, 'correct horse battery staple')).rejects.toThrow(
    'the hash pool is closed',
  );
  await expect(hashPassword('correct horse battery staple')).rejects.toThrow(
    'the hash pool is closed',
  );
});
