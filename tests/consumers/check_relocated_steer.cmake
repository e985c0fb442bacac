# The installed steer program survives moving the clone (cmake -P script, called by ctest as
# install.steer_relocated). Inputs: PREFIX (an install prefix of steer), EXPECTED_RUNPATH (the
# INSTALL_RPATH of steer_cli), STEER_SOURCE_DIR, STEER_BINARY_DIR, VERSION (steer's version).
#
# 1. The prefix is copied to a fresh directory outside the clone.
# 2. The copy's RUNPATH (readelf -d) is EXPECTED_RUNPATH, and each entry is an existing real
#    directory (no symlink such as the clone's .venv on the way), outside the source and build
#    trees, none of the `/lib/intel64`-style entries Torch's MKL module leaves.
# 3. `steer --version` runs from the copy with the clone unreachable: in a private mount
#    namespace (unshare) whose source and build trees are covered by empty tmpfs mounts, so
#    nothing inside them, the .venv symlink included, can be opened. Where unshare is not
#    allowed, it runs from the copy with LD_DEBUG=libs instead and no loaded library may come
#    from the source or build tree.
function(fail)
  if(copy)
    file(REMOVE_RECURSE "${copy}")
  endif()
  string(JOIN "" text ${ARGN})
  message(FATAL_ERROR "install.steer_relocated: ${text}")
endfunction()

# A path lies inside DIR (or is DIR).
function(inside path dir out)
  string(LENGTH "${dir}/" length)
  string(SUBSTRING "${path}/" 0 ${length} head)
  if(head STREQUAL "${dir}/")
    set(${out} TRUE PARENT_SCOPE)
  else()
    set(${out} FALSE PARENT_SCOPE)
  endif()
endfunction()

file(REAL_PATH "${STEER_SOURCE_DIR}" source_dir)
file(REAL_PATH "${STEER_BINARY_DIR}" binary_dir)
if(NOT EXISTS "${PREFIX}/bin/steer")
  fail("${PREFIX}/bin/steer does not exist (was steer_cli built and installed?)")
endif()

# 1. A copy of the prefix outside the clone.
if(DEFINED ENV{TMPDIR})
  set(temp_root "$ENV{TMPDIR}")
else()
  set(temp_root /tmp)
endif()
string(RANDOM LENGTH 10 suffix)
set(copy "${temp_root}/steer-relocated-${suffix}")
inside("${copy}" "${source_dir}" copy_in_source)
if(copy_in_source)
  fail("the temporary directory ${copy} lies inside the source tree; set TMPDIR elsewhere")
endif()
file(MAKE_DIRECTORY "${copy}")
file(COPY "${PREFIX}/" DESTINATION "${copy}" USE_SOURCE_PERMISSIONS)
set(program "${copy}/bin/steer")

# 2. RUNPATH.
execute_process(COMMAND readelf -d "${program}" OUTPUT_VARIABLE dynamic RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  fail("readelf -d ${program} failed (${result})")
endif()
if(NOT dynamic MATCHES "\\((RUNPATH|RPATH)\\)[^\n]*\\[([^]\n]*)\\]")
  fail("${program} has no RUNPATH; expected [${EXPECTED_RUNPATH}]")
endif()
set(runpath "${CMAKE_MATCH_2}")
message(STATUS "RUNPATH of the copy: [${runpath}]")
string(REPLACE ";" ":" expected "${EXPECTED_RUNPATH}")
if(NOT runpath STREQUAL expected)
  fail("RUNPATH of ${program} is [${runpath}], expected [${expected}]")
endif()
string(REPLACE ":" ";" entries "${runpath}")
foreach(entry IN LISTS entries)
  if(entry MATCHES "intel64|win-x64")
    fail("RUNPATH entry '${entry}' is one of the MKL directories Torch's CMake makes up")
  endif()
  if(NOT IS_ABSOLUTE "${entry}" OR NOT IS_DIRECTORY "${entry}")
    fail("RUNPATH entry '${entry}' is not an existing absolute directory")
  endif()
  file(REAL_PATH "${entry}" real)
  if(NOT real STREQUAL entry)
    fail("RUNPATH entry '${entry}' goes through a symlink (it is ${real})")
  endif()
  foreach(tree IN ITEMS "${source_dir}" "${binary_dir}")
    inside("${entry}" "${tree}" in_tree)
    if(in_tree)
      fail("RUNPATH entry '${entry}' lies inside ${tree}, which moving the clone breaks "
        "(hint: a .venv directory inside the clone; link it to a virtualenv outside instead)")
    endif()
  endforeach()
endforeach()

# 3. Run the copy with the clone out of reach.
set(expected_output "steer ${VERSION} ")
set(hide "mount -t tmpfs steer-hidden '${binary_dir}' && mount -t tmpfs steer-hidden '${source_dir}'")
set(namespace)
foreach(candidate IN ITEMS "unshare;--mount" "unshare;--user;--map-root-user;--mount")
  execute_process(COMMAND ${candidate} sh -c "${hide} && test ! -e '${source_dir}/.venv'"
    RESULT_VARIABLE result OUTPUT_QUIET ERROR_QUIET)
  if(result EQUAL 0)
    set(namespace ${candidate})
    break()
  endif()
endforeach()
if(namespace)
  message(STATUS "running ${program} --version with ${source_dir} and ${binary_dir} hidden")
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH
      ${namespace} sh -c "${hide} && exec '${program}' --version"
    OUTPUT_VARIABLE output ERROR_VARIABLE errors RESULT_VARIABLE result)
else()
  message(STATUS "unshare is not allowed here; running ${program} --version with LD_DEBUG=libs")
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH LD_DEBUG=libs "${program}" --version
    OUTPUT_VARIABLE output ERROR_VARIABLE errors RESULT_VARIABLE result)
  string(REGEX MATCHALL "calling init: [^\n]*" inits "${errors}")
  foreach(init IN LISTS inits)
    string(REPLACE "calling init: " "" library "${init}")
    foreach(tree IN ITEMS "${source_dir}" "${binary_dir}")
      inside("${library}" "${tree}" in_tree)
      if(in_tree)
        fail("${program} loaded ${library} from inside ${tree}")
      endif()
    endforeach()
  endforeach()
  set(errors "")
endif()
message(STATUS "output: ${output}${errors}")
if(NOT result EQUAL 0)
  fail("${program} --version exited with ${result} (127: a library was not found): ${errors}")
endif()
string(FIND "${output}" "${expected_output}" at)
if(NOT at EQUAL 0)
  fail("${program} --version printed '${output}', expected it to start with '${expected_output}'")
endif()
file(REMOVE_RECURSE "${copy}")
