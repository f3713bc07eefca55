import { Injectable } from '@nestjs/common';
import { createGuardrails, verify } from 'otplib';

// RFC 6238 asks for 128-bit secrets; the demo's documented secret (JBSWY3DPEHPK3PXP) has 80.
const DEMO_GUARDRAILS = createGuardrails({ MIN_SECRET_BYTES: 10 });
/** One 30-second step either side of the server's clock, for a phone whose clock drifts. */
const TOLERANCE_SECONDS = 30;

/**
 * TOTP checks for the demo, with otplib. A code is accepted once: the time step of each user's
 * last accepted code is remembered, and a code of that step or an earlier one is refused (a
 * code seen over a shoulder, or sent twice, is no second login). In memory: one demo process.
 */
@Injectable()
export class TotpCodes {
  private readonly lastStep = new Map<string, number>();

  /** True once per user and time step, for a valid 6-digit code of `secret`. */
  async accept(userId: string, secret: string, code: string): Promise<boolean> {
    const result = await verify({
      secret,
      token: code,
      epochTolerance: TOLERANCE_SECONDS,
      guardrails: DEMO_GUARDRAILS,
    }).catch(() => ({ valid: false as const }));
    if (!result.valid || !('timeStep' in result)) return false;
    // Checked and recorded with no await between: of two concurrent requests with one code, one wins.
    const step = result.timeStep;
    if (step <= (this.lastStep.get(userId) ?? -1)) return false;
    this.lastStep.set(userId, step);
    return true;
  }
}
