package configs

import (
	"reflect"
	"slices"
)

// Diff compares the camera registries of two configurations by camera ID.
// added are in new only, removed in old only, changed in both with any
// field different. Each list is sorted. A nil Config has no cameras.
func Diff(old, new *Config) (added, removed, changed []string) {
	oldCams := map[string]Camera{}
	if old != nil {
		for _, c := range old.Cameras {
			oldCams[c.ID] = c
		}
	}
	seen := map[string]bool{}
	if new != nil {
		for _, c := range new.Cameras {
			seen[c.ID] = true
			prev, ok := oldCams[c.ID]
			switch {
			case !ok:
				added = append(added, c.ID)
			case prev != c:
				changed = append(changed, c.ID)
			}
		}
	}
	for id := range oldCams {
		if !seen[id] {
			removed = append(removed, id)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	slices.Sort(changed)
	return added, removed, changed
}

// Equal reports whether two configurations are the same in every setting.
func Equal(a, b *Config) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	// Locations loaded twice are different pointers; the name decides.
	x.Location, y.Location = nil, nil
	x.Warnings, y.Warnings = nil, nil
	return reflect.DeepEqual(x, y)
}
