package configs

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// This file checks what the files mean together: rules that name sites or
// cameras the registry does not have never fire, and a camera that only
// catch-all rules match gets none of the handling written for its site.

// matchRef is where a rule's match named a site or a camera.
type matchRef struct {
	path         string
	site, camera *yaml.Node // nil when the match leaves them out
}

// cameraRef is where a camera was decoded.
type cameraRef struct {
	path string
	item *yaml.Node
	site *yaml.Node // nil when the camera has no site
}

// unitIndex holds the units known to the rules.
type unitIndex struct {
	nodes map[string]*yaml.Node
	list  []Unit
}

func (u *unitIndex) node(id string) *yaml.Node { return u.nodes[id] }

// hint suggests the unit meant by name: a unit whose name it is (dispatch_to
// takes the ID, not 司法所), or an ID close to it; and lists the valid IDs.
func (u *unitIndex) hint(name string) string {
	ids := make([]string, len(u.list))
	for i, unit := range u.list {
		ids[i] = unit.ID
	}
	if len(ids) == 0 {
		return " (alerts.units lists none)"
	}
	var mean string
	for _, unit := range u.list {
		if unit.Name == name && unit.Name != unit.ID {
			mean = unit.ID
			break
		}
	}
	if mean == "" {
		mean = closest(name, ids)
	}
	valid := "valid unit ids: " + strings.Join(ids, ", ")
	if mean != "" {
		return fmt.Sprintf(" (did you mean %s? %s)", mean, valid)
	}
	return " (" + valid + ")"
}

// closest returns the candidate nearest to s within an edit distance of 2
// (3 for names longer than 8), or "".
func closest(s string, candidates []string) string {
	if len(s) > 8 {
		return nearest(s, candidates, 4)
	}
	return nearest(s, candidates, 3)
}

// checkMeaning checks the rules (decoded by d from vigil.yaml) against the
// cameras (decoded by cd from the registry). Nothing is checked when the
// registry did not load or lists no camera: there is nothing to hold the
// rules against.
func checkMeaning(d, cd *decoder, cfg *Config) {
	if cd == nil || len(cfg.Cameras) == 0 {
		return
	}
	ids := make([]string, 0, len(cfg.Cameras))
	var sites []string
	for _, c := range cfg.Cameras {
		ids = append(ids, c.ID)
		if c.Site != "" && !slices.Contains(sites, c.Site) {
			sites = append(sites, c.Site)
		}
	}
	for _, m := range d.matches {
		if m.camera != nil && !slices.Contains(ids, m.camera.Value) {
			d.at(m.camera, join(m.path, "camera"), "unknown camera %q%s", m.camera.Value, DidYouMean(m.camera.Value, ids, "cameras"))
		}
		if m.site != nil && !slices.Contains(sites, m.site.Value) {
			d.at(m.site, join(m.path, "site"), "no camera has site %q%s", m.site.Value, DidYouMean(m.site.Value, sites, "sites"))
		}
	}

	// A site rule that cannot match is an error above; a camera that no
	// site, camera or grid rule matches is legal but most likely a typo in
	// its site, so it is a warning.
	var named []Rule
	var ruleSites []string
	for _, r := range cfg.Alerts.Rules {
		if r.Match.Site != "" || r.Match.Camera != "" || r.Match.Grid != "" {
			named = append(named, r)
		}
		if r.Match.Site != "" && !slices.Contains(ruleSites, r.Match.Site) {
			ruleSites = append(ruleSites, r.Match.Site)
		}
	}
	if len(named) == 0 {
		return // only catch-all rules: every camera is handled alike on purpose
	}
	for i, c := range cfg.Cameras {
		if slices.ContainsFunc(named, func(r Rule) bool { return r.Match.matchesCamera(c) }) {
			continue
		}
		ref := cd.cams[i]
		at, path := ref.item, ref.path
		if ref.site != nil {
			at, path = ref.site, join(ref.path, "site")
		}
		msg := fmt.Sprintf("no alert rule names site %q or camera %s; only catch-all rules apply to it", c.Site, c.ID)
		if c.Site == "" {
			msg = fmt.Sprintf("camera %s has no site and no alert rule names it; only catch-all rules apply to it", c.ID)
		} else if mean := closest(c.Site, ruleSites); mean != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", mean)
		}
		cd.warn(at, path, "%s", msg)
	}
}

// DidYouMean reads " (did you mean X?)" when one of known is close to s,
// else lists known.
func DidYouMean(s string, known []string, what string) string {
	if mean := closest(s, known); mean != "" {
		return fmt.Sprintf(" (did you mean %s?)", mean)
	}
	return fmt.Sprintf(" (%s: %s)", what, strings.Join(known, ", "))
}

// matchesCamera reports whether every site, camera and grid the match sets
// is c's; the event type is left out.
func (m Match) matchesCamera(c Camera) bool {
	return (m.Site == "" || m.Site == c.Site) && (m.Camera == "" || m.Camera == c.ID) && (m.Grid == "" || m.Grid == c.Grid)
}
