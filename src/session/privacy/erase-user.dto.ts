import { IsIn, IsOptional } from 'class-validator';
import type { ErasureMode } from './privacy.store.js';

export const ERASURE_MODES: readonly ErasureMode[] = ['anonymise', 'delete'];

/** `DELETE <admin>/users/:userId/personal-data?mode=`: anything but these (repeated, unknown keys) is a 400. */
export class EraseUserQueryDto {
  @IsOptional()
  @IsIn(ERASURE_MODES, { message: `$property must be one of: ${ERASURE_MODES.join(', ')}` })
  mode?: ErasureMode;
}
