import { Module } from '@nestjs/common';
import { ConfigurableModuleClass } from './session.module-definition.js';

/**
 * `SessionModule.forRoot(options)` or `SessionModule.forRootAsync({ useFactory, inject, imports })`.
 * Needs a TypeORM DataSource for PostgreSQL (TypeOrmModule.forRoot) and the tables from
 * `sessionMigrations`.
 */
@Module({})
export class SessionModule extends ConfigurableModuleClass {}
