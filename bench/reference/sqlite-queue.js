'use strict'

// The straightforward durable queue one would write in JavaScript with
// better-sqlite3: one table, WAL with synchronous=NORMAL (the same promise
// as the native store's default), prepared statements, one transaction per
// operation. Same contract: priority then FIFO, a lease per dequeued job,
// an expired lease handed out again.

const Database = require('better-sqlite3')

const PRIORITY = { low: 0, medium: 1, high: 2 }
const LEASE_MS = 5 * 60 * 1000

class SqliteJobQueue {
  constructor(file) {
    this.db = new Database(file)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL, operation TEXT NOT NULL, payload TEXT, user_id TEXT NOT NULL,
        priority INTEGER NOT NULL, created_at INTEGER NOT NULL,
        retry_count INTEGER NOT NULL, max_retries INTEGER NOT NULL, next_retry_at INTEGER,
        status TEXT NOT NULL, last_error TEXT, lease_until INTEGER
      );
      CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (status, priority DESC, created_at, seq);
      CREATE INDEX IF NOT EXISTS jobs_leases ON jobs (status, lease_until);
    `)
    this.insert = this.db.prepare(`INSERT INTO jobs (id, type, operation, payload, user_id, priority, created_at,
      retry_count, max_retries, next_retry_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')`)
    this.recover = this.db.prepare(`UPDATE jobs SET status = 'pending', lease_until = NULL
      WHERE status = 'processing' AND lease_until < ?`)
    this.next = this.db.prepare(`SELECT * FROM jobs WHERE status = 'pending' AND (next_retry_at IS NULL OR next_retry_at <= ?)
      ORDER BY priority DESC, created_at, seq LIMIT 1`)
    this.lease = this.db.prepare(`UPDATE jobs SET status = 'processing', lease_until = ? WHERE seq = ?`)
    this.finish = this.db.prepare(`UPDATE jobs SET status = 'completed', lease_until = NULL
      WHERE id = ? AND status IN ('pending', 'processing')`)
    this.dequeueTx = this.db.transaction((now) => {
      this.recover.run(now)
      const row = this.next.get(now)
      if (!row) return null
      this.lease.run(now + LEASE_MS, row.seq)
      return row
    })
  }

  enqueue(job) {
    const now = Date.now()
    const id = `job_${now}_${Math.random().toString(36).slice(2, 11)}`
    this.insert.run(id, job.type, job.operation, JSON.stringify(job.payload), job.userId, PRIORITY[job.priority],
      now, job.retryCount, job.maxRetries, job.nextRetryAt ? job.nextRetryAt.getTime() : null)
    return id
  }

  dequeue() {
    const row = this.dequeueTx.immediate(Date.now())
    if (!row) return null
    return {
      id: row.id,
      type: row.type,
      operation: row.operation,
      payload: row.payload === null ? undefined : JSON.parse(row.payload),
      userId: row.user_id,
      priority: Object.keys(PRIORITY)[row.priority],
      createdAt: new Date(row.created_at),
      retryCount: row.retry_count,
      maxRetries: row.max_retries,
      status: 'processing',
    }
  }

  complete(id) {
    return this.finish.run(id).changes > 0
  }

  close() {
    this.db.close()
  }
}

module.exports = { SqliteJobQueue }
