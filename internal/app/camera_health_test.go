package app

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"vigil/configs"
)

// refusingCamera answers every RTSP request with 401, like a camera given a
// wrong password, until the test ends. It returns the stream URL.
func refusingCamera(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					cseq := ""
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						line = strings.TrimSpace(line)
						if line == "" {
							break
						}
						if v, ok := strings.CutPrefix(line, "CSeq: "); ok {
							cseq = v
						}
					}
					if _, err := io.WriteString(conn, "RTSP/1.0 401 Unauthorized\r\nCSeq: "+cseq+"\r\nWWW-Authenticate: Basic realm=\"cam\"\r\n\r\n"); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "rtsp://" + l.Addr().String() + "/cam"
}

// A camera that refuses the password shows why in the camera API and in
// the camera_offline alert's detail (issue 18, items 11 and 12).
func TestRefusedCameraSaysUnauthorized(t *testing.T) {
	cfg := writeConfig(t, "ingest: {offline_after: 1s}\n")
	cams := "cameras:\n  - {id: hall-entrance, name: 服务大厅入口, site: hall, url: \"" + refusingCamera(t) +
		"\", username: admin, password: wrong-Pw-77, transport: tcp}\n"
	if err := os.WriteFile(cfg.CamerasPath, []byte(cams), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	a := startApp(t, cfg, io.Discard)

	var cam struct {
		Status    string `json:"status"`
		Recording bool   `json:"recording"`
		Attempts  int    `json:"attempts"`
		LastError *struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"last_error"`
	}
	waitFor(t, 10*time.Second, "the camera offline", func() bool {
		_, body := call(t, "GET", a.URL()+"/api/v1/cameras/hall-entrance", deskToken, "")
		json.Unmarshal([]byte(body), &cam)
		return cam.Status == "offline"
	})
	if cam.Recording || cam.Attempts < 1 || cam.LastError == nil || cam.LastError.Reason != "unauthorized" ||
		strings.Contains(cam.LastError.Message, "wrong-Pw-77") {
		t.Fatalf("camera %+v %+v", cam, cam.LastError)
	}

	var al struct {
		Type   string            `json:"type"`
		Detail map[string]string `json:"detail"`
	}
	waitFor(t, 10*time.Second, "a camera_offline alert", func() bool {
		_, body := call(t, "GET", a.URL()+"/api/v1/alerts?camera=hall-entrance", deskToken, "")
		var l struct {
			Alerts []json.RawMessage `json:"alerts"`
		}
		json.Unmarshal([]byte(body), &l)
		for _, raw := range l.Alerts {
			json.Unmarshal(raw, &al)
			if al.Type == "camera_offline" {
				return true
			}
		}
		return false
	})
	if al.Detail["reason"] != "unauthorized" || !strings.Contains(al.Detail["message"], "401") {
		t.Fatalf("alert detail %v", al.Detail)
	}
}

// The recorder's frames reach the camera API: a recorded camera that is
// online shows recording, one with record: false does not (issue 18, item
// 11; the outage side is TestRecordingOnlyWhileFramesAreWritten in ingest).
func TestRecordingShowsFramesWritten(t *testing.T) {
	sim := startCamsim(t, "cam/gate", "cam/hall")
	cfg := simConfig(t, sim, map[string]string{"gate": "key-site", "hall": "hall"})
	cams, err := os.ReadFile(cfg.CamerasPath)
	if err != nil {
		t.Fatal(err)
	}
	// hall watches events only.
	out := strings.Replace(string(cams), "site: hall,", "site: hall, record: false,", 1)
	if out == string(cams) {
		t.Fatalf("no hall camera in %s", cams)
	}
	os.WriteFile(cfg.CamerasPath, []byte(out), 0o600)
	if cfg, err = configs.Load(cfg.Path); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, cfg, io.Discard)
	recording := func(id string) bool {
		st, err := a.streams.Status(id)
		if err != nil {
			t.Fatal(err)
		}
		return st.Recording
	}
	waitFor(t, 15*time.Second, "gate recording", func() bool { return recording("gate") })
	waitFor(t, 10*time.Second, "hall online", func() bool { return cameraStatus(t, a, "hall") == "online" })
	if recording("hall") {
		t.Error("a camera with record: false shows recording")
	}
}
