// fieldsync pages: small progressive enhancements; every page works without this script.
"use strict";
