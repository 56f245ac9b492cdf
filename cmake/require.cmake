# larder_require(PREFIX MODULE DEBIAN_PACKAGE [HINT]): pkg-config's MODULE as
# the imported target PkgConfig::PREFIX, or a configure error that names the
# Debian package to install (and HINT, such as the option that does without it).
function(larder_require prefix module package)
  pkg_check_modules(${prefix} QUIET IMPORTED_TARGET GLOBAL ${module})
  if(NOT ${prefix}_FOUND)
    set(hint "")
    if(ARGC GREATER 3)
      set(hint " ${ARGV3}")
    endif()
    message(FATAL_ERROR "larder needs ${module} (pkg-config): install the Debian package ${package}${hint}. "
                        "bash scripts/deps.sh installs everything the build needs.")
  endif()
endfunction()

# larder_require_program(VAR PROGRAM DEBIAN_PACKAGE): the path of PROGRAM in VAR.
function(larder_require_program var program package)
  find_program(${var} ${program})
  if(NOT ${var})
    message(FATAL_ERROR "larder needs the program ${program}: install the Debian package ${package}. "
                        "bash scripts/deps.sh installs everything the build needs.")
  endif()
endfunction()
