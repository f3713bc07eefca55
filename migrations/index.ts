import { CreateSessionTables1763780000000 } from './1763780000000-CreateSessionTables.js';
import { CreateSessionPurgeRuns1796169600000 } from './1796169600000-CreateSessionPurgeRuns.js';
import { CreateSessionPurgeLease1796212800000 } from './1796212800000-CreateSessionPurgeLease.js';
import { PartitionSessionAuditLog1796256000000 } from './1796256000000-PartitionSessionAuditLog.js';
import { CreateSessionRetiredTokens1796342400000 } from './1796342400000-CreateSessionRetiredTokens.js';
import { AddSessionLifetimesAndGuests1796428800000 } from './1796428800000-AddSessionLifetimesAndGuests.js';
import { CreateSessionModuleKeys1796515200000 } from './1796515200000-CreateSessionModuleKeys.js';
import { IndexAuditLogByNetwork1796515200001 } from './1796515200001-IndexAuditLogByNetwork.js';
import { AddSessionImpersonation1796601600000 } from './1796601600000-AddSessionImpersonation.js';
import { AddSessionSecondFactor1796688000000 } from './1796688000000-AddSessionSecondFactor.js';
import { AddAuditPersonalDataIndex1796688000001 } from './1796688000001-AddAuditPersonalDataIndex.js';

/** Add these to your DataSource's `migrations` (the module never uses `synchronize`). */
export const sessionMigrations = [
  CreateSessionTables1763780000000,
  CreateSessionPurgeRuns1796169600000,
  CreateSessionPurgeLease1796212800000,
  PartitionSessionAuditLog1796256000000,
  CreateSessionRetiredTokens1796342400000,
  AddSessionLifetimesAndGuests1796428800000,
  CreateSessionModuleKeys1796515200000,
  IndexAuditLogByNetwork1796515200001,
  AddSessionImpersonation1796601600000,
  AddSessionSecondFactor1796688000000,
  AddAuditPersonalDataIndex1796688000001,
];

export {
  CreateSessionTables1763780000000,
  CreateSessionPurgeRuns1796169600000,
  CreateSessionPurgeLease1796212800000,
  PartitionSessionAuditLog1796256000000,
  CreateSessionRetiredTokens1796342400000,
  AddSessionLifetimesAndGuests1796428800000,
  CreateSessionModuleKeys1796515200000,
  IndexAuditLogByNetwork1796515200001,
  AddSessionImpersonation1796601600000,
  AddSessionSecondFactor1796688000000,
  AddAuditPersonalDataIndex1796688000001,
};
