// Start configurable-http-proxy with its API token read from a file only its owner can read.
//
// The proxy reads its token from $CONFIGPROXY_AUTH_TOKEN only. Handing it over in the unit's
// environment would put the secret in the process's initial environment block
// (/proc/<pid>/environ), readable by root and by anything running as the proxy's account; setting
// process.env here, after start, keeps it out of that block. The unit names the file in
// $CONFIGPROXY_AUTH_TOKEN_FILE; the file must be a regular 0600 (or 0400) file.
"use strict";
const fs = require("fs");
const path = require("path");
const url = require("url");

function fail(message) {
  console.error(`enclave-proxy: ${message}`);
  process.exit(2);
}

const tokenFile = process.env.CONFIGPROXY_AUTH_TOKEN_FILE;
if (!tokenFile) fail("CONFIGPROXY_AUTH_TOKEN_FILE must name the proxy's token file");
if (process.env.CONFIGPROXY_AUTH_TOKEN) fail("CONFIGPROXY_AUTH_TOKEN is set: keep the token in its file");
let fd;
try {
  fd = fs.openSync(tokenFile, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
} catch (error) {
  fail(`cannot read ${tokenFile}: ${error.code}`);
}
const info = fs.fstatSync(fd);
if (!info.isFile() || (info.mode & 0o077) !== 0) {
  fail(`${tokenFile} must be a regular file readable by its owner only (chmod 600)`);
}
const token = fs.readFileSync(fd, "utf8").trim();
fs.closeSync(fd);
if (!token) fail(`${tokenFile} is empty`);
delete process.env.CONFIGPROXY_AUTH_TOKEN_FILE;
process.env.CONFIGPROXY_AUTH_TOKEN = token;

// The proxy is an ES module: import() loads it on every Node.js the proxy supports (Debian's 18 too).
const main = path.join(__dirname, "node_modules", "configurable-http-proxy", "bin", "configurable-http-proxy");
import(url.pathToFileURL(main).href).catch((error) => fail(error.stack || String(error)));
