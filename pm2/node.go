package pm2

// A .js, .cjs or .mjs ecosystem file is a program: only node can say what
// it exports. It is run as PM2 runs it (require(), or import() for ES
// modules), in the file's directory, with the caller's environment, and
// with "--env NAME" in process.argv when an environment is chosen, since
// some files look there. A .json file that is not strict JSON is
// evaluated as one JavaScript expression, as PM2 evaluates it, but in a
// fresh context (no require, no process). What the file exports is
// written as JSON and read like a .json file. Nothing here parses
// JavaScript.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// nodeTimeout bounds the run of a configuration file: PM2 gives a .json
// one 1 s; a .js one may require modules, so more.
const nodeTimeout = 20 * time.Second

// loader writes {"value": EXPORTS} or {"error": MESSAGE, "line": N} to
// file descriptor 3, so that a file that prints to stdout does not get in
// the way. process.argv[1] is the file; HOW is replaced by "module",
// "expression" (a .json file PM2 would read as JavaScript) or "require".
const loader = `
const file = process.argv[1], how = 'HOW';
const fs = require('fs');
const write = (s) => { fs.writeSync(3, s); process.exit(0); };
const out = (o) => write(JSON.stringify(o));
const fail = (e) => {
  const stack = String((e && e.stack) || e);
  let line = 0;
  const at = stack.indexOf(file + ':');
  if (at >= 0) {
    const m = /^:(\d+)/.exec(stack.slice(at + file.length));
    if (m) line = Number(m[1]);
  }
  const msg = (e && e.message !== undefined) ? (e.name ? e.name + ': ' : '') + e.message : String(e);
  out({ error: msg.split('\n')[0], line });
};
const done = (v) => {
  if (v && typeof v === 'object' && Object.prototype.toString.call(v) === '[object Module]') {
    v = v.default !== undefined ? v.default : Object.assign({}, v);
  }
  let s;
  try { s = JSON.stringify(v === undefined ? null : v); } catch (e) { return fail(e); }
  write('{"value":' + (s === undefined ? 'null' : s) + '}');
};
(async () => {
  try {
    if (how === 'expression') {
      const code = fs.readFileSync(file, 'utf8');
      return done(require('vm').runInNewContext('(' + code + ')', {}, { filename: file, timeout: 1000 }));
    }
    if (how === 'module') {
      return done(await import(require('url').pathToFileURL(file).href));
    }
    try {
      return done(require(file));
    } catch (e) {
      if (e && e.code === 'ERR_REQUIRE_ESM') return done(await import(require('url').pathToFileURL(file).href));
      throw e;
    }
  } catch (e) { fail(e); }
})();
`

// errNoNode says node is not on PATH.
var errNoNode = errors.New("node is not on PATH")

// runNode runs the file at abs (an absolute path) under node and returns
// the JSON of what it exports. how is "require", "module" or
// "expression". An error in the file is an *Error (with a line when node
// names one).
func runNode(node, abs, file, how, env string) ([]byte, error) {
	if node == "" {
		node = "node"
	}
	bin, err := exec.LookPath(node)
	if err != nil {
		return nil, errNoNode
	}
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	out, err := os.CreateTemp("", "mhrun-pm2-*.json")
	if err != nil {
		return nil, fmt.Errorf("run node on %s: %w", file, err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	args := []string{"--input-type=commonjs", "-e", strings.Replace(loader, "HOW", how, 1), abs}
	if env != "" {
		args = append(args, "--env", env)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = filepath.Dir(abs)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	cmd.ExtraFiles = []*os.File{out}
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		return nil, &Error{File: file, Msg: fmt.Sprintf("node did not finish running it within %s", nodeTimeout)}
	}
	data, rerr := os.ReadFile(out.Name())
	if rerr != nil {
		return nil, fmt.Errorf("run node on %s: %w", file, rerr)
	}
	var res struct {
		Value json.RawMessage `json:"value"`
		Error *string         `json:"error"`
		Line  int             `json:"line"`
	}
	if jerr := json.Unmarshal(data, &res); jerr != nil || (res.Value == nil && res.Error == nil) {
		msg := firstLine(stderr.String())
		if msg == "" && err != nil {
			msg = err.Error()
		}
		if msg == "" {
			msg = "printed nothing readable"
		}
		return nil, &Error{File: file, Msg: "node could not run it: " + msg}
	}
	if res.Error != nil {
		return nil, &Error{File: file, Line: res.Line, Msg: "node could not run it: " + *res.Error}
	}
	return res.Value, nil
}

// firstLine returns the first line of s that is not blank.
func firstLine(s string) string {
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}
