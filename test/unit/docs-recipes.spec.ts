import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { documentationPages } from '../support/readme-quick-start.js';

const ROOT = new URL('../../', import.meta.url).pathname;

/** Every `<!-- recipe: path -->` block of the docs, with the file it names. */
function recipeBlocks(): { page: string; path: string; code: string }[] {
  const marker = /<!-- recipe: (\S+) -->\s*\n```ts\n([\s\S]*?)\n```/g;
  return [...documentationPages()].flatMap(([page, text]) => {
    const blocks = [...text.matchAll(marker)].map(([, path, code]) => ({ page, path, code: `${code}\n` }));
    expect(blocks).toHaveLength(text.match(/<!-- recipe:/g)?.length ?? 0);
    return blocks;
  });
}

describe('recipes in the docs', () => {
  const blocks = recipeBlocks();

  it('exist (docs/passport.md shows the Passport recipe)', () => {
    expect(blocks.map((block) => `${block.page} ${block.path}`)).toEqual(
      expect.arrayContaining([
        'docs/passport.md test/recipes/passport/local.strategy.ts',
        'docs/passport.md test/recipes/passport/auth.controller.ts',
        'docs/passport.md test/recipes/passport/auth.module.ts',
        'docs/passport.md test/recipes/passport/oauth.controller.ts',
      ]),
    );
  });

  it.each(blocks.map((block) => [block.page, block.path, block.code]))(
    '%s shows %s as it is tested',
    (_page, path, code) => {
      expect(code).toBe(readFileSync(`${ROOT}${path}`, 'utf8'));
    },
  );
});
