module {{name}}

go 1.24

require sluice.dev/sdk v0.1.0

// The Sluice Go SDK, from the sluice checkout that created this project.
replace sluice.dev/sdk => {{sdk_path}}/go
