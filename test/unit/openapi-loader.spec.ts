import { describe, expect, it } from '@jest/globals';
import { loadSwagger } from '../../src/session/admin/openapi.js';

const notFound = (code: string, what: string) =>
  Object.assign(
    new Error(`Cannot find package '${what}' imported from /app/node_modules/@nestjs/swagger/dist/index.js`),
    { code },
  );

describe('loadSwagger (the optional @nestjs/swagger peer)', () => {
  it('gives the package when it is installed', async () => {
    const swagger = await loadSwagger();
    expect(typeof swagger?.ApiOperation).toBe('function');
  });

  it('answers undefined when @nestjs/swagger is not installed (Node ESM and CommonJS codes)', async () => {
    await expect(
      loadSwagger(() => Promise.reject(notFound('ERR_MODULE_NOT_FOUND', '@nestjs/swagger'))),
    ).resolves.toBeUndefined();
    await expect(
      loadSwagger(() => Promise.reject(notFound('MODULE_NOT_FOUND', '@nestjs/swagger'))),
    ).resolves.toBeUndefined();
  });

  it('does not hide an installed swagger that fails to load, nor a missing dependency of it', async () => {
    await expect(loadSwagger(() => Promise.reject(new SyntaxError('Unexpected token')))).rejects.toThrow(SyntaxError);
    await expect(
      loadSwagger(() => Promise.reject(notFound('ERR_MODULE_NOT_FOUND', 'swagger-ui-dist'))),
    ).rejects.toThrow(/swagger-ui-dist/);
  });
});
