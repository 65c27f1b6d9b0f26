#!/usr/bin/env node
// The Node.js `tls` peer of the interop matrix (docs/interop.md).
//
// Usage: node peer.js server JOBS   |   node peer.js client JOBS
//
// The same jobs file and the same output as test/interop/peer.py (its
// docstring has the format): one "result tag=... " line per connection.
// Written for Node.js 18 (Debian 12's) and 20 alike: only tls, net and
// fs, no newer API.
'use strict';

const fs = require('fs');
const tls = require('tls');

const TIMEOUT_MS = 10000;

function readJobs(path) {
  return fs.readFileSync(path, 'utf8').split('\n')
    .map((l) => l.trim()).filter((l) => l.length > 0)
    .map((l) => Object.fromEntries(l.split(/\s+/).map((w) => {
      const i = w.indexOf('=');
      return [w.slice(0, i), w.slice(i + 1)];
    })));
}

function report(tag, n, status, f) {
  f = f || {};
  const reason = String(f.reason || '-').split(/\s+/).join(' ') || '-';
  process.stdout.write(`result tag=${tag} n=${n} status=${status} ` +
    `version=${f.version || '-'} cipher=${f.cipher || '-'} ` +
    `resumed=${f.resumed ? 'yes' : 'no'} sni=${f.sni || '-'} ` +
    `echo=${f.echo ? 'yes' : 'no'} reason=${reason}\n`);
}

// What both sides set from a job: versions, the security level, files.
function options(job) {
  const o = {};
  if (job.min && job.min !== '-') o.minVersion = job.min;
  if (job.max && job.max !== '-') o.maxVersion = job.max;
  // OpenSSL 3 refuses TLS 1.0 and 1.1 above security level 0.
  if (job.legacy === '1') o.ciphers = 'DEFAULT@SECLEVEL=0';
  if (job.cert) {
    o.cert = fs.readFileSync(job.cert);
    o.key = fs.readFileSync(job.key);
  }
  if (job.ca) o.ca = fs.readFileSync(job.ca);
  return o;
}

// OpenSSL's name of the suite, as the shim logs it.
function cipherName(sock) {
  const c = sock.getCipher();
  return c ? c.name : '-';
}

// ---- server ---------------------------------------------------------------

function listen(job, done) {
  const o = options(job);
  o.requestCert = job.mutual === '1';
  o.rejectUnauthorized = job.mutual === '1';
  // A cell's connections are one after the other: they are numbered in
  // the order their handshakes end, whichever way.
  let n = 0;
  const server = tls.createServer(o, (sock) => {
    n += 1;
    report(job.tag, n, 'ok', {
      version: sock.getProtocol(), cipher: cipherName(sock),
      resumed: sock.isSessionReused(), sni: sock.servername, echo: true,
    });
    sock.setTimeout(TIMEOUT_MS, () => sock.destroy());
    sock.on('data', (d) => sock.write(d));
    sock.on('end', () => sock.end());
    sock.on('error', () => sock.destroy());
  });
  server.on('tlsClientError', (err, sock) => {
    n += 1;
    report(job.tag, n, 'error', {
      sni: sock && sock.servername, reason: err.message,
    });
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listen tag=${job.tag} port=${server.address().port}\n`);
    done();
  });
}

function serve(jobs) {
  let left = jobs.length;
  for (const job of jobs) {
    listen(job, () => {
      left -= 1;
      if (left === 0) process.stdout.write('ready\n');
    });
  }
  // The runner stops this process by its PID; stdin's end stops it too.
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

// ---- client ---------------------------------------------------------------

function connectOnce(job, n, session, next) {
  const o = options(job);
  o.host = job.host || '127.0.0.1';
  o.port = Number(job.port);
  o.servername = job.sni;
  o.checkServerIdentity = (host, cert) =>
    tls.checkServerIdentity(job.sni, cert);
  if (session) o.session = session;
  const line = `interop ${job.tag} ${n}\n`;
  let got = '';
  let newSession = null;
  let finished = false;
  const sock = tls.connect(o);
  const finish = (status, f) => {
    if (finished) return;
    finished = true;
    report(job.tag, n, status, f);
    sock.destroy();
    next(newSession || session);
  };
  const facts = () => ({
    version: sock.getProtocol(), cipher: cipherName(sock),
    resumed: sock.isSessionReused(), sni: job.sni,
  });
  sock.setTimeout(TIMEOUT_MS, () => finish('error', { reason: 'timeout' }));
  sock.on('session', (s) => { newSession = s; });
  sock.on('secureConnect', () => sock.write(line));
  sock.on('data', (d) => {
    got += d.toString();
    if (got.endsWith('\n')) {
      const f = facts();
      f.echo = got === line;
      if (!f.echo) f.reason = `echo ${JSON.stringify(got)}`;
      // Give a TLS 1.3 ticket that follows the reply a moment to arrive.
      setTimeout(() => { sock.end(); finish(f.echo ? 'ok' : 'error', f); },
        newSession ? 0 : 50);
    }
  });
  sock.on('error', (e) => {
    const f = sock.getProtocol ? facts() : {};
    f.reason = e.message;
    finish('error', f);
  });
  sock.on('end', () => finish('error', { reason: 'EOF before the echo',
    ...facts() }));
}

function clientJobs(jobs) {
  let j = 0;
  const runJob = () => {
    if (j >= jobs.length) return;
    const job = jobs[j++];
    const count = Number(job.count || '1');
    let n = 1;
    const step = (session) => {
      if (n > count) { runJob(); return; }
      connectOnce(job, n++, session, step);
    };
    step(null);
  };
  runJob();
}

function main() {
  const [mode, path] = process.argv.slice(2);
  if (!path || (mode !== 'server' && mode !== 'client')) {
    process.stderr.write('usage: node peer.js server|client JOBS\n');
    process.exit(2);
  }
  const jobs = readJobs(path);
  if (mode === 'server') serve(jobs); else clientJobs(jobs);
}

main();
