package app

import (
	"context"
	"errors"
	"sync"
	"time"

	"vigil/cluster"
)

// In a cluster a node pulls only the cameras it holds; the others are
// disabled in its own ingest. GET /api/v1/cameras on any node shows every
// camera as its holder sees it, so that the town's desk sees the villages'
// cameras online, with the holder named (node). The holders are asked in
// parallel, once each; a holder that does not answer leaves its cameras as
// this node knows them, marked unreachable.

// cameraStatusTimeout bounds the wait for the holders' answers.
const cameraStatusTimeout = 2 * time.Second

// maxCameraList bounds a holder's answer.
const maxCameraList = 8 << 20

// cameraHolders maps each camera a live node holds to that node.
func (a *App) cameraHolders(ctx context.Context) (map[string]string, error) {
	nodes, err := a.nodes.Recent(ctx)
	if err != nil {
		return nil, err
	}
	holder := map[string]string{} // camera → node
	for _, n := range nodes {
		for _, c := range n.Cameras {
			holder[c] = n.ID
		}
	}
	return holder, nil
}

// withHolderStatus replaces v by the view of the live node that holds its
// camera, when another one does: GET /api/v1/cameras/{id} shows the camera
// as the list does.
func (a *App) withHolderStatus(ctx context.Context, v *cameraView) {
	holder, err := a.cameraHolders(ctx)
	if err != nil {
		a.log.Warn("camera: the cluster's nodes are unknown; showing this node's view", "component", "forward", "camera", v.ID, "err", err)
		return
	}
	h, ok := holder[v.ID]
	if !ok {
		return
	}
	v.Node = h
	if h == a.nodeID {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, cameraStatusTimeout)
	defer cancel()
	var got cameraView
	err = a.peers.GetJSON(ctx, h, "/api/v1/cameras/"+v.ID, maxCameraList, &got)
	switch {
	case errors.As(err, new(*cluster.StatusError)):
		// it answered but does not know the camera (its registry
		// differs: GET /api/v1/nodes flags it): this node's view
		a.log.Warn("camera: its holder does not know it", "component", "forward", "camera", v.ID, "node", h, "err", err)
	case err != nil:
		a.log.Warn("camera: its holder did not answer", "component", "forward", "camera", v.ID, "node", h, "err", err)
		v.Unreachable = true
	case got.ID != v.ID:
		a.log.Warn("camera: its holder answered for another camera", "component", "forward", "camera", v.ID, "node", h, "answered", got.ID)
	default:
		got.Node = h
		*v = got
	}
}

// withHoldersStatus replaces, in views, the status of each camera another
// live node holds by that node's.
func (a *App) withHoldersStatus(ctx context.Context, views []cameraView) {
	holder, err := a.cameraHolders(ctx)
	if err != nil {
		a.log.Warn("cameras: the cluster's nodes are unknown; showing this node's view", "component", "forward", "err", err)
		return
	}
	ask := map[string]bool{}
	for i := range views {
		if h, ok := holder[views[i].ID]; ok {
			views[i].Node = h
			if h != a.nodeID {
				ask[h] = true
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cameraStatusTimeout)
	defer cancel()
	var mu sync.Mutex
	answers := map[string]map[string]cameraView{} // node → camera → view
	var wg sync.WaitGroup
	for node := range ask {
		wg.Go(func() {
			got, err := a.askCameras(ctx, node)
			if err != nil {
				a.log.Warn("cameras: a holder did not answer", "component", "forward", "node", node, "err", err)
				return
			}
			mu.Lock()
			answers[node] = got
			mu.Unlock()
		})
	}
	wg.Wait()
	for i := range views {
		h := views[i].Node
		if h == "" || h == a.nodeID {
			continue
		}
		got, ok := answers[h]
		if !ok {
			views[i].Unreachable = true
			continue
		}
		if v, ok := got[views[i].ID]; ok {
			v.Node = h
			views[i] = v
		}
	}
}

// askCameras is node's own view of its cameras.
func (a *App) askCameras(ctx context.Context, node string) (map[string]cameraView, error) {
	var body struct {
		Cameras []cameraView `json:"cameras"`
	}
	if err := a.peers.GetJSON(ctx, node, "/api/v1/cameras", maxCameraList, &body); err != nil {
		return nil, err
	}
	out := make(map[string]cameraView, len(body.Cameras))
	for _, v := range body.Cameras {
		out[v.ID] = v
	}
	return out, nil
}
