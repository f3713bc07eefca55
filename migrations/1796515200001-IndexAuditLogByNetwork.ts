import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Admin queries filter the audit log by address or by network (`ip=2001:db8::/64`), and the
 * aggregated flood rows store an IPv6 source as its /64 network. `ip` stays text (it holds
 * what the framework or the app's getClientIp() resolved, which need not be an address), and
 * session_audit_inet(ip) reads it as inet: an address, or the IPv6 /64 the flood rows write;
 * NULL for anything else, including other networks (a client-supplied "0.0.0.0/0" in
 * X-Forwarded-For must not match every filter). IPv4-mapped IPv6 addresses become IPv4, as in
 * the flood rows. A btree over it serves both filter forms: equality in (occurred_at, id)
 * order for one address, and for a network the range Postgres derives from `<<=` (its
 * network_subset_support); a GiST inet_ops index would serve `<<=` too, but without the
 * ordered read of the common case, one IPv4 address. It replaces the text index on ip, which
 * no query uses any more. The function is plpgsql to catch the cast's error (PostgreSQL 15
 * has no pg_input_is_valid); a pattern check first keeps most non-addresses away from it.
 * Building the index locks the table against writes for the build (about a second per
 * million rows).
 */
export class IndexAuditLogByNetwork1796515200001 implements MigrationInterface {
  name = 'IndexAuditLogByNetwork1796515200001';

  async up(queryRunner: QueryRunner): Promise<void> {
    // PARALLEL RESTRICTED: an exception block starts a subtransaction, which parallel workers cannot.
    await queryRunner.query(`
      CREATE FUNCTION session_audit_inet(ip text) RETURNS inet
      LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL RESTRICTED AS $$
      DECLARE
        value inet;
      BEGIN
        IF length(ip) > 64 OR ip !~ '^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$' THEN
          RETURN NULL;
        END IF;
        BEGIN
          value := ip::inet;
        EXCEPTION WHEN data_exception THEN
          RETURN NULL;
        END;
        IF family(value) = 6 AND masklen(value) = 128 AND value << inet '::ffff:0.0.0.0/96' THEN
          RETURN substr(host(value), 8)::inet;
        END IF;
        IF masklen(value) = (CASE family(value) WHEN 4 THEN 32 ELSE 128 END)
           OR (family(value) = 6 AND masklen(value) = 64 AND value = network(value)) THEN
          RETURN value;
        END IF;
        RETURN NULL;
      END $$`);
    // Not partial (WHERE ... IS NOT NULL): the planner estimates `<<=` from the statistics of a
    // whole index's expression only, and without them guesses 0.5% of rows for every network.
    await queryRunner.query(
      `CREATE INDEX session_audit_log_inet_idx ON session_audit_log (session_audit_inet(ip), occurred_at DESC, id DESC)`,
    );
    await queryRunner.query(`DROP INDEX session_audit_log_ip_idx`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE INDEX session_audit_log_ip_idx ON session_audit_log (ip, occurred_at DESC, id DESC) WHERE ip IS NOT NULL`,
    );
    await queryRunner.query(`DROP INDEX session_audit_log_inet_idx`);
    await queryRunner.query(`DROP FUNCTION session_audit_inet(text)`);
  }
}
