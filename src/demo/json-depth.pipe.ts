import { BadRequestException, Injectable, type ArgumentMetadata, type PipeTransform } from '@nestjs/common';

/**
 * Refuses request bodies nested deeper than `maxDepth` before any recursive code (class-
 * transformer, class-validator) walks them: a 20,000-level body would otherwise overflow
 * the stack and surface as a 500. Walks iteratively, so it cannot overflow itself.
 */
@Injectable()
export class JsonDepthPipe implements PipeTransform {
  constructor(private readonly maxDepth = 32) {}

  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (metadata.type !== 'body' || typeof value !== 'object' || value === null) return value;
    const stack: Array<[unknown, number]> = [[value, 1]];
    while (stack.length > 0) {
      const [node, depth] = stack.pop()!;
      if (typeof node !== 'object' || node === null) continue;
      if (depth > this.maxDepth)
        throw new BadRequestException(`request body nests deeper than ${this.maxDepth} levels`);
      for (const child of Object.values(node)) stack.push([child, depth + 1]);
    }
    return value;
  }
}
