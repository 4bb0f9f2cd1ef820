package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"vigil/internal/camsim"
	"vigil/internal/testutil"
)

// cutProxy forwards TCP to a node and can cut the network between the
// browser and the node (listener closed, every connection dropped) and
// restore it on the same address: an outage the page cannot tell from a
// stopped server, while the node keeps its sessions.
type cutProxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	p := &cutProxy{t: t, target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *cutProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cutProxy) restore() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// TestWebAppThroughOutageAndRoles drives the web app against the whole
// service: the board survives a network outage under its banner and
// resumes with every alert once, those raised during the outage included;
// an investigator lands on the footage view and sees real recordings; an
// admin lands on the cameras view.
func TestWebAppThroughOutageAndRoles(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	shots := t.TempDir()
	sim := startCamsim(t, "cam/gate", "cam/hall")
	a := startApp(t, simConfig(t, sim, map[string]string{"gate": "key-site", "hall": "hall"}), &testutil.Buffer{})
	waitFor(t, 15*time.Second, "cameras online", func() bool {
		return cameraStatus(t, a, "gate") == "online" && cameraStatus(t, a, "hall") == "online"
	})
	proxy := newCutProxy(t, a.Addr())
	url := "http://" + proxy.addr

	do := func(browser context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		actx, acancel := context.WithTimeout(browser, 20*time.Second)
		defer acancel()
		for i, act := range actions {
			if err := chromedp.Do(actx, act); err != nil {
				if png, serr := chromedp.Run(browser, chromedp.CaptureScreenshot()); serr == nil {
					os.WriteFile(filepath.Join(shots, "failed.png"), png, 0o644)
				}
				t.Fatalf("%s: step %d: %v", what, i+1, err)
			}
		}
	}
	eval := func(browser context.Context, expr string, v any) {
		t.Helper()
		s, err := chromedp.Run(browser, chromedp.Evaluate[string](`JSON.stringify(`+expr+`)`))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		json.Unmarshal([]byte(s), v)
	}
	poll := func(expr string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))
	}
	login := func(browser context.Context, token string) {
		t.Helper()
		do(browser, "login",
			chromedp.Navigate(url+"/"),
			chromedp.WaitVisible(chromedp.CSS(`#login-token`)),
			chromedp.SendKeys(chromedp.CSS(`#login-token`), token),
			chromedp.Click(chromedp.CSS(`#login-submit`)),
		)
	}
	row := func(id string) string { return fmt.Sprintf(`#alert-list li[data-id=%q]`, id) }

	t.Run("desk through an outage", func(t *testing.T) {
		browser := deskBrowser(t, ctx)
		if _, err := sim.Trigger("cam/hall", camsim.Motion, camsim.Active); err != nil {
			t.Fatal(err)
		}
		first := alertOf(t, a, "hall", "motion")
		login(browser, deskToken)
		do(browser, "board", chromedp.WaitVisible(chromedp.CSS(row(first.ID))), chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="open"]`)))

		proxy.cut()
		do(browser, "outage", poll(`!document.getElementById("banner").hidden && document.getElementById("banner").textContent.startsWith("连接中断，正在重连")`))
		if _, err := sim.Trigger("cam/gate", camsim.Motion, camsim.Active); err != nil {
			t.Fatal(err)
		}
		if _, err := sim.Trigger("cam/hall", camsim.Intrusion, camsim.Active); err != nil {
			t.Fatal(err)
		}
		gateMo, hallIn := alertOf(t, a, "gate", "motion"), alertOf(t, a, "hall", "intrusion")
		do(browser, "still out", poll(`/00:0[2-9]/.test(document.getElementById("banner").textContent)`))
		var view string
		eval(browser, `document.body.dataset.view`, &view)
		if view != "desk" {
			t.Fatalf("view during the outage: %q", view)
		}
		screenshot(t, browser, shots, "outage")

		proxy.restore()
		do(browser, "resumed",
			chromedp.WaitVisible(chromedp.CSS(row(gateMo.ID))),
			chromedp.WaitVisible(chromedp.CSS(row(hallIn.ID))),
			chromedp.WaitNotVisible(chromedp.CSS(`#banner`)),
			chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="open"]`)),
		)
		var ids []string
		eval(browser, `[...document.querySelectorAll("#alert-list li")].map(li => li.dataset.id).sort()`, &ids)
		_, body := call(t, "GET", a.URL()+"/api/v1/alerts?status=open", deskToken, "")
		var l struct {
			Alerts []deskAlert `json:"alerts"`
		}
		json.Unmarshal([]byte(body), &l)
		var want []string
		for _, al := range l.Alerts {
			want = append(want, al.ID)
		}
		slices.Sort(want)
		if !slices.Equal(ids, want) || len(ids) != 3 {
			t.Fatalf("rows after the outage %v, open alerts %v: want each open alert once", ids, want)
		}
	})

	t.Run("investigator lands on footage", func(t *testing.T) {
		waitFor(t, 15*time.Second, "a closed hall segment", func() bool {
			segs, _, _ := a.recorder.Catalog().List("hall", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
			return len(segs) > 0
		})
		browser := deskBrowser(t, ctx)
		login(browser, invToken)
		do(browser, "footage",
			chromedp.WaitVisible(chromedp.CSS(`#footage-cameras li[data-id="hall"] button`)),
			chromedp.Click(chromedp.CSS(`#footage-cameras li[data-id="hall"] button`)),
			chromedp.WaitVisible(chromedp.CSS(`#footage-segments li[data-id]`)),
		)
		var title string
		eval(browser, `document.body.dataset.view + " " + document.getElementById("app-title").textContent`, &title)
		if title != "footage 录像调阅" {
			t.Errorf("investigator view %q", title)
		}
		screenshot(t, browser, shots, "footage")
	})

	t.Run("admin lands on cameras", func(t *testing.T) {
		browser := deskBrowser(t, ctx)
		login(browser, adminToken)
		do(browser, "cameras", chromedp.WaitVisible(chromedp.CSS(`#admin-camera-list li[data-id="gate"][data-status="online"]`)))
		var view string
		eval(browser, `document.body.dataset.view + " " + document.body.dataset.tab`, &view)
		if view != "admin cameras" {
			t.Errorf("admin view %q", view)
		}
		// The nodes tab lists this node (alone: the embedded journal) with
		// the cameras it records.
		do(browser, "nodes", chromedp.Click(chromedp.CSS(`#admin-nav button[data-tab="nodes"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#node-list li[data-id]`)), chromedp.WaitVisible(chromedp.CSS(`#admin-nodes-note`)))
		do(browser, "audit", chromedp.Click(chromedp.CSS(`#admin-nav button[data-tab="audit"]`)), chromedp.WaitVisible(chromedp.CSS(`#admin-audit`)))
		screenshot(t, browser, shots, "admin")
	})
}
