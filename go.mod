module vigil

go 1.26.0

require (
	github.com/bluenviron/mediacommon/v2 v2.9.3
	go.etcd.io/bbolt v1.5.0
)

require (
	github.com/stretchr/testify v1.12.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
