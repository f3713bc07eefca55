import { readdirSync, readFileSync } from 'node:fs';

const ROOT = new URL('../../', import.meta.url).pathname;

/** A code block of README.md that a marker comment assigns to a file of the quick-start app. */
export interface QuickStartBlock {
  /** `quick-start` for the app itself, `quick-start forRootAsync` for a variant that replaces a file of it. */
  variant: string;
  path: string;
  code: string;
}

/** The pages that hold quick-start blocks: README.md and docs/*.md, as shipped. */
export function documentationPages(): Map<string, string> {
  const pages = new Map([['README.md', readFileSync(`${ROOT}README.md`, 'utf8')]]);
  for (const name of readdirSync(`${ROOT}docs`)
    .filter((file) => file.endsWith('.md'))
    .sort())
    pages.set(`docs/${name}`, readFileSync(`${ROOT}docs/${name}`, 'utf8'));
  return pages;
}

/**
 * The quick start, as a user copies it: every fenced block right after a
 * `<!-- quick-start: src/file.ts -->` (or `<!-- quick-start forRootAsync: ... -->`) comment.
 */
export function quickStartBlocks(pages = documentationPages()): QuickStartBlock[] {
  return [...pages.values()].flatMap((page) => blocksOf(page));
}

function blocksOf(readme: string): QuickStartBlock[] {
  const blocks: QuickStartBlock[] = [];
  const marker = /<!-- (quick-start(?: [\w-]+)?): (\S+) -->\s*\n```(\w+)\n([\s\S]*?)\n```/g;
  for (const match of readme.matchAll(marker)) {
    const [, variant, path, language, code] = match;
    if (language !== 'ts') throw new Error(`README quick start ${path}: expected a ts block, found ${language}`);
    blocks.push({ variant, path, code: `${code}\n` });
  }
  const markers = readme.match(/<!-- quick-start/g)?.length ?? 0;
  if (markers !== blocks.length) throw new Error(`${markers} quick-start markers, ${blocks.length} blocks`);
  return blocks;
}

/** The files of one variant: the base app's files, with the variant's replacing those of the same path. */
export function quickStartApp(blocks: QuickStartBlock[], variant = 'quick-start'): Map<string, string> {
  const files = new Map<string, string>();
  for (const block of blocks) if (block.variant === 'quick-start') files.set(block.path, block.code);
  if (variant !== 'quick-start') {
    const replacements = blocks.filter((block) => block.variant === variant);
    if (replacements.length === 0) throw new Error(`README has no ${variant} blocks`);
    for (const block of replacements) files.set(block.path, block.code);
  }
  return files;
}
