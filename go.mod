module vigil

go 1.26

require github.com/bluenviron/mediacommon/v2 v2.9.3

require github.com/stretchr/testify v1.12.0 // indirect
