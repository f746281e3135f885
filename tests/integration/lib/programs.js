// The only way an integration test starts a program other than the station:
// every program must be listed in scripts/programs.tsv with the package that
// provides it (that table is what scripts/test.sh installs from), and it must
// be installed. Otherwise the test FAILS, naming the program and the package:
// a security test that skips because a tool is missing is a silent pass.
// scripts/check-programs.sh fails when a test starts a program another way.
'use strict';

const { spawn, execFile, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..', '..');
const TABLE = path.join(REPO, 'scripts', 'programs.tsv');

let rows = null;
// program -> { packages, check, groups }
function table() {
  if (rows) return rows;
  rows = new Map();
  for (const line of fs.readFileSync(TABLE, 'utf8').split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const [program, source, check, groups] = t.split(/\s+/);
    rows.set(program, { source, check, groups: (groups || '').split(',') });
  }
  return rows;
}

// Directories searched besides PATH (rsyslogd lives in /usr/sbin, which is not
// on a non-root user's PATH).
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

function which(name) {
  const dirs = [...(process.env.PATH || '').split(':').filter(Boolean), ...EXTRA_DIRS];
  for (const d of dirs) {
    const f = path.join(d, name);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      if (fs.statSync(f).isFile()) return f;
    } catch {
      /* not here */
    }
  }
  return null;
}

// The absolute path of `name`; throws (the test fails) when the program is not
// in the table or not installed.
function program(name) {
  const row = table().get(name);
  if (!row) {
    throw new Error(
      `a test runs '${name}', which is not in scripts/programs.tsv: add it there with the Debian or npm package ` +
        'that provides it (scripts/test.sh installs from that table)',
    );
  }
  if (!row.groups.includes('test')) {
    throw new Error(`'${name}' is in scripts/programs.tsv but not in the group 'test': scripts/test.sh does not install it`);
  }
  const found = which(name);
  if (!found) {
    throw new Error(`'${name}' is not installed (${row.source}); ./scripts/test.sh installs it from scripts/programs.tsv`);
  }
  return found;
}

// execFile of a listed program: resolves {code, stdout, stderr}, never rejects
// for a non-zero exit (the caller asserts on code).
function runProgram(name, args, opts = {}) {
  return runFile(program(name), args, opts);
}

function runProgramSync(name, args, opts = {}) {
  return execFileSync(program(name), args, opts);
}

function spawnProgram(name, args, opts = {}) {
  return spawn(program(name), args, opts);
}

// The station binary itself (not a system program): spawn/execFile as is.
function spawnFile(file, args, opts = {}) {
  return spawn(file, args, opts);
}

// execFile of the station binary (or a listed program's resolved path).
function runFile(file, args, { timeoutMs = 15000, env } = {}) {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, env: env ?? process.env, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      let code = 0;
      if (err) code = typeof err.code === 'number' ? err.code : err.signal ? `signal ${err.signal}` : -1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

module.exports = { program, runProgram, runProgramSync, spawnProgram, spawnFile, runFile, which };
