//go:build unix

package httpapi

// A browser test of the dead-letter page in headless Chromium, driven over
// the DevTools protocol. The protocol runs over a WebSocket; the few dozen
// lines of RFC 6455 a client needs (text frames, masking, fragments, ping)
// are written out below, so the test adds no Go dependency.

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

func TestBrowserRetryDeadLetter(t *testing.T) {
	bin := chromiumBin(t)
	e := newUIEnv(t)
	at := time.Now().Add(-time.Hour)
	e.deadLetter("job-keep-0001", "48901", "RCS601", false, at)
	e.deadLetter("job-retry-0002", "48902", "RCS904", false, at.Add(time.Minute))
	e.deadLetter("job-maybe-0003", "48903", "TIMEOUT", true, at.Add(2*time.Minute))

	p := signedIn(t, bin, e.srv.URL+"/ui/deadletters")

	// Signed in: back on the dead-letter page, with every letter listed.
	p.waitFor(t, "the dead-letter page", `location.pathname === '/ui/deadletters' && document.readyState === 'complete' && document.querySelectorAll('tr[data-job]').length === 3`)
	if got := p.eval(t, `[...document.querySelectorAll('tr[data-job]')].map(r => r.dataset.job).join(' ')`); got != "job-maybe-0003 job-retry-0002 job-keep-0001" {
		t.Fatalf("rows before the retry: %v", got)
	}
	if got := p.eval(t, `getComputedStyle(document.body).backgroundColor`); got != "rgb(247, 248, 250)" {
		t.Errorf("the stylesheet did not apply (body background %v)", got)
	}
	if got := p.eval(t, `document.querySelector('tr[data-job="job-maybe-0003"] .badge.uncertain') !== null`); got != true {
		t.Error("no uncertain badge on the uncertain letter")
	}

	// Click the row's Retry button; the page reloads without that row.
	p.click(t, `tr[data-job="job-retry-0002"] button.retry`)
	p.waitFor(t, "the page after the retry", `document.readyState === 'complete' && !!document.querySelector('#flash') && !document.querySelector('tr[data-job="job-retry-0002"]')`)
	if got := p.eval(t, `document.querySelector('#flash').textContent`); !strings.HasPrefix(fmt.Sprint(got), "Retried job-retry-0002") {
		t.Errorf("flash after the retry: %q", got)
	}
	if got := p.eval(t, `[...document.querySelectorAll('tr[data-job]')].map(r => r.dataset.job).join(' ')`); got != "job-maybe-0003 job-keep-0001" {
		t.Errorf("rows after the retry: %v", got)
	}
	if got := p.eval(t, `window.__csp.join('; ')`); got != "" {
		t.Errorf("CSP violations on our pages: %v", got)
	}
	if st := e.state("job-retry-0002"); st != "queued" || e.Task("job-retry-0002") == nil {
		t.Errorf("job-retry-0002 after the click: %s, task %v", st, e.Task("job-retry-0002") != nil)
	}
	if st := e.state("job-keep-0001"); st != "dead_lettered" {
		t.Errorf("job-keep-0001: %s", st)
	}
	shot := filepath.Join(t.TempDir(), "deadletters.png")
	p.screenshot(t, shot)
	t.Logf("screenshot of the dead-letter page: %s", shot)

	// asynqmon runs in the browser under its policy (its inline scripts are
	// allowed by hash): the React app renders the launch queue.
	p.navigate(t, e.srv.URL+"/ui/asynq/")
	p.waitFor(t, "asynqmon to render", `document.readyState === 'complete' && document.querySelector('#root') !== null && document.querySelector('#root').childElementCount > 0 && document.body.innerText.includes('launch')`)
	if got := p.eval(t, `window.__csp.filter(v => v.startsWith('script-src')).join('; ')`); got != "" {
		t.Errorf("asynqmon's scripts were blocked: %v", got)
	}
	p.screenshot(t, filepath.Join(filepath.Dir(shot), "asynqmon.png"))

	// Its link back to our pages shows over it (a click at its centre
	// reaches it), styled under asynqmon's policy.
	if got := p.eval(t, `window.__csp.filter(v => v.startsWith('style-src-attr')).join('; ')`); got != "" {
		t.Errorf("the link back's style was blocked: %v", got)
	}
	if got := p.eval(t, `getComputedStyle(document.querySelector('#rcslaunch-back')).position`); got != "fixed" {
		t.Errorf("the link back is not fixed in its corner: position %v", got)
	}
	p.click(t, "#rcslaunch-back")
	p.waitFor(t, "our dead-letter page, from asynqmon's link back", `location.pathname === '/ui/deadletters' && document.readyState === 'complete'`)
}

// chromiumBin is the browser to drive; the test is skipped without one.
func chromiumBin(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return chromiumPath
	}
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed: apt-get install chromium (CI installs it)")
	}
	return bin
}

// signedIn starts a browser that records CSP violations in window.__csp,
// visits target without a session, signs in on the login page it lands on
// and returns the tab (on its way back to target).
func signedIn(t *testing.T, bin, target string) *page {
	t.Helper()
	p := startChromium(t, bin).newPage(t)
	p.call(t, "Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": `window.__csp = [];
		document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`})
	p.navigate(t, target)
	p.waitFor(t, "the login page", `location.pathname === '/ui/login' && document.readyState === 'complete' && !!document.querySelector('#token')`)
	p.click(t, "#token")
	p.call(t, "Input.insertText", map[string]any{"text": uiTestAdmin})
	p.click(t, "#signin")
	return p
}

// ---- Chromium ----

type browser struct {
	cmd    *exec.Cmd
	ws     *wsConn
	stderr *tailBuffer

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan cdpMessage
	closed  chan struct{}
}

type cdpMessage struct {
	ID        int64           `json:"id,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    any             `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

var devtoolsURL = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// startChromium starts a headless browser with a fresh profile that can
// reach nothing but loopback addresses, and stops it when the test ends.
func startChromium(t *testing.T, bin string) *browser {
	t.Helper()
	profile := t.TempDir()
	cmd := exec.Command(bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--disable-extensions", "--disable-dev-shm-usage", "--mute-audio", "--disable-breakpad", "--disable-crash-reporter",
		"--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--window-size=1280,800", "--user-data-dir="+profile, "--remote-debugging-port=0", "about:blank")
	// Its own process group: the wrapper script, the browser and its
	// helpers are stopped together, and only they.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{cmd: cmd, stderr: &tailBuffer{max: 16 << 10}, pending: map[int64]chan cdpMessage{}, closed: make(chan struct{})}
	exited := make(chan struct{})
	t.Cleanup(func() {
		if b.ws != nil {
			b.ws.close()
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			b.stderr.add(line)
			if m := devtoolsURL.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
		close(exited)
	}()
	var wsURL string
	select {
	case wsURL = <-found:
	case <-exited:
		t.Fatalf("chromium exited before it listened:\n%s", b.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("chromium printed no DevTools address in 60 s:\n%s", b.stderr)
	}
	if b.ws, err = dialWS(wsURL); err != nil {
		t.Fatalf("connect to chromium at %s: %v", wsURL, err)
	}
	go b.read()
	return b
}

// read hands answers to their callers; events are not needed.
func (b *browser) read() {
	defer close(b.closed)
	for {
		data, err := b.ws.read()
		if err != nil {
			return
		}
		var m cdpMessage
		if json.Unmarshal(data, &m) != nil || m.ID == 0 {
			continue
		}
		b.mu.Lock()
		ch := b.pending[m.ID]
		delete(b.pending, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// call sends one command (to a page when session is set) and waits for
// its answer.
func (b *browser) call(session, method string, params any) (json.RawMessage, error) {
	ch := make(chan cdpMessage, 1)
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	b.pending[id] = ch
	b.mu.Unlock()
	if params == nil {
		params = map[string]any{}
	}
	data, err := json.Marshal(cdpMessage{ID: id, SessionID: session, Method: method, Params: params})
	if err != nil {
		return nil, err
	}
	if err := b.ws.writeText(data); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return nil, fmt.Errorf("%s: %s (%d)", method, m.Error.Message, m.Error.Code)
		}
		return m.Result, nil
	case <-b.closed:
		return nil, fmt.Errorf("%s: the DevTools connection closed", method)
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("%s: no answer in 30 s", method)
	}
}

// page is one browser tab, attached in flat session mode.
type page struct {
	b       *browser
	session string
}

func (b *browser) newPage(t *testing.T) *page {
	t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	res, err := b.call("", "Target.createTarget", map[string]any{"url": "about:blank"})
	if err == nil {
		err = json.Unmarshal(res, &target)
	}
	if err != nil {
		t.Fatalf("new tab: %v\n%s", err, b.stderr)
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	res, err = b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true})
	if err == nil {
		err = json.Unmarshal(res, &att)
	}
	if err != nil {
		t.Fatalf("attach to the tab: %v", err)
	}
	p := &page{b: b, session: att.SessionID}
	p.call(t, "Page.enable", nil)
	p.call(t, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": false})
	return p
}

func (p *page) call(t *testing.T, method string, params any) json.RawMessage {
	t.Helper()
	res, err := p.b.call(p.session, method, params)
	if err != nil {
		t.Fatalf("%v\nchromium's log:\n%s", err, p.b.stderr)
	}
	return res
}

func (p *page) navigate(t *testing.T, u string) {
	t.Helper()
	var res struct {
		ErrorText string `json:"errorText"`
	}
	if err := json.Unmarshal(p.call(t, "Page.navigate", map[string]any{"url": u}), &res); err != nil || res.ErrorText != "" {
		t.Fatalf("navigate to %s: %v %s", u, err, res.ErrorText)
	}
}

// eval runs a JavaScript expression in the page and returns its value.
func (p *page) eval(t *testing.T, expr string) any {
	t.Helper()
	v, err := p.evalErr(expr)
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (p *page) evalErr(expr string) (any, error) {
	res, err := p.b.call(p.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	if err != nil {
		return nil, err
	}
	var out struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &out); err != nil {
		return nil, err
	}
	if d := out.ExceptionDetails; d != nil {
		return nil, fmt.Errorf("%s %s", d.Text, d.Exception.Description)
	}
	return out.Result.Value, nil
}

// waitFor polls a JavaScript condition until it holds. Polling also rides
// over navigations, during which an evaluation may fail.
func (p *page) waitFor(t *testing.T, what, cond string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last any
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = p.evalErr(cond)
		if last == true {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	loc, _ := p.evalErr("location.href")
	body, _ := p.evalErr("document.body ? document.body.innerText : ''")
	t.Fatalf("waiting for %s: %s still %v (%v) at %v; page text:\n%.2000v", what, cond, last, lastErr, loc, body)
}

// click presses the left mouse button in the middle of the element, as a
// user would (the element must be visible; it is scrolled into view).
func (p *page) click(t *testing.T, selector string) {
	t.Helper()
	q, _ := json.Marshal(selector)
	v := p.eval(t, `(() => { const el = document.querySelector(`+string(q)+`); if (!el) return null;
		el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();
		return [r.left + r.width / 2, r.top + r.height / 2, r.width, r.height]; })()`)
	xy, ok := v.([]any)
	if !ok || len(xy) != 4 || xy[2].(float64) == 0 || xy[3].(float64) == 0 {
		t.Fatalf("click %s: no such visible element (%v)", selector, v)
	}
	for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
		ev := map[string]any{"type": typ, "x": xy[0], "y": xy[1]}
		if typ != "mouseMoved" {
			ev["button"], ev["clickCount"] = "left", 1
		}
		p.call(t, "Input.dispatchMouseEvent", ev)
	}
}

func (p *page) screenshot(t *testing.T, path string) {
	t.Helper()
	var res struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(p.call(t, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}), &res); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot is no PNG (%d bytes, %v)", len(png), err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	// The temp dir goes with the test; keep a copy where asked to.
	if dir := os.Getenv("RCSLAUNCH_SCREENSHOT_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err == nil {
			keep := filepath.Join(dir, filepath.Base(path))
			if os.WriteFile(keep, png, 0o644) == nil {
				t.Logf("screenshot kept at %s", keep)
			}
		}
	}
}

// tailBuffer keeps the last lines of chromium's log for failure messages.
type tailBuffer struct {
	mu    sync.Mutex
	max   int
	lines []string
	size  int
}

func (b *tailBuffer) add(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, line)
	b.size += len(line) + 1
	for b.size > b.max && len(b.lines) > 1 {
		b.size -= len(b.lines[0]) + 1
		b.lines = b.lines[1:]
	}
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// ---- a minimal WebSocket client (RFC 6455) ----

type wsConn struct {
	c  net.Conn
	r  *bufio.Reader
	mu sync.Mutex // serialises writes
}

// dialWS opens a ws:// connection (no TLS, no extensions).
func dialWS(rawURL string) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "ws" {
		return nil, fmt.Errorf("not a ws:// URL: %q", rawURL)
	}
	c, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	key := base64.StdEncoding.EncodeToString(nonce)
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	r := bufio.NewReaderSize(c, 64<<10)
	resp, err := http.ReadResponse(r, &http.Request{Method: http.MethodGet})
	if err != nil {
		c.Close()
		return nil, err
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		c.Close()
		return nil, fmt.Errorf("websocket handshake refused: %s", resp.Status)
	}
	_ = c.SetDeadline(time.Time{})
	return &wsConn{c: c, r: r}, nil
}

const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xA
)

// writeFrame sends one final, masked frame (clients must mask).
func (w *wsConn) writeFrame(op byte, payload []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	hdr := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n <= 0xFFFF:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = binary.BigEndian.AppendUint64(append(hdr, 0x80|127), uint64(n))
	}
	mask := make([]byte, 4)
	_, _ = rand.Read(mask)
	hdr = append(hdr, mask...)
	masked := make([]byte, len(payload))
	for i, c := range payload {
		masked[i] = c ^ mask[i%4]
	}
	_, err := w.c.Write(append(hdr, masked...))
	return err
}

func (w *wsConn) writeText(p []byte) error { return w.writeFrame(wsText, p) }

// read returns the next whole data message, answering pings on the way.
func (w *wsConn) read() ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.r, h[:]); err != nil {
			return nil, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0F
		n := uint64(h[1] & 0x7F)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(w.r, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(w.r, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		var mask []byte
		if h[1]&0x80 != 0 { // servers do not mask, but tolerate it
			mask = make([]byte, 4)
			if _, err := io.ReadFull(w.r, mask); err != nil {
				return nil, err
			}
		}
		if n > 256<<20 {
			return nil, fmt.Errorf("websocket frame of %d bytes", n)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(w.r, payload); err != nil {
			return nil, err
		}
		if mask != nil {
			for i := range payload {
				payload[i] ^= mask[i%4]
			}
		}
		switch op {
		case wsPing:
			if err := w.writeFrame(wsPong, payload); err != nil {
				return nil, err
			}
		case wsPong:
		case wsClose:
			_ = w.writeFrame(wsClose, nil)
			return nil, io.EOF
		case wsText, wsBinary, wsContinuation:
			msg = append(msg, payload...)
			if fin {
				return msg, nil
			}
		default:
			return nil, errors.New("websocket: unknown opcode")
		}
	}
}

func (w *wsConn) close() {
	_ = w.writeFrame(wsClose, nil)
	_ = w.c.Close()
}
